// Live camera: Grad-CAM follows the webcam's frames (one forward and one backward pass each, as
// fast as the device allows); freezing a frame runs the chosen method (Score-CAM by default) on
// it. Frames never leave the machine. No camera, or a refused permission, gives a clear message.

import { $, make } from '../dom.js';
import { get, set } from '../store.js';
import { guard, clearError, fail } from '../core.js';
import { analyseImage } from '../explain.js';

const LIVE_METHOD = 'gradcam';
const FRAME_SIDE = 448; // frames are explained at most this large (the network resizes anyway)

let stream = null;
let live = false;
let frames = 0;

function cameraError(err) {
  const name = err?.name ?? '';
  if (name === 'NotAllowedError' || name === 'SecurityError') return new Error('The camera permission was refused. Allow the camera for this page in the browser’s address bar, then press Start again.');
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return new Error('No camera was found on this device.');
  if (name === 'NotReadableError') return new Error('The camera is in use by another application, or the system blocked it.');
  return new Error(`The camera could not start (${err?.message ?? err}).`);
}

/// The current video frame as the page's image (a canvas of at most FRAME_SIDE px).
function grabFrame(video) {
  const scale = Math.min(1, FRAME_SIDE / Math.max(video.videoWidth, video.videoHeight));
  const width = Math.max(1, Math.round(video.videoWidth * scale));
  const height = Math.max(1, Math.round(video.videoHeight * scale));
  const canvas = make('canvas', { width, height });
  canvas.getContext('2d', { willReadFrequently: true }).drawImage(video, 0, 0, width, height);
  return { canvas, width, height, blob: null, source: { kind: 'camera' } };
}

async function loop(video) {
  while (live) {
    if (video.readyState >= 2 && video.videoWidth) {
      set({ image: grabFrame(video), top5: [], progress: null, classIndex: null });
      await analyseImage({ method: LIVE_METHOD, live: true });
      if (!live) break;
      frames++;
      $('camera-status').textContent = `Live: Grad-CAM on frame ${frames}. Freeze to run ${get().methods.find((m) => m.name === get().options.method)?.display_name ?? 'the chosen method'} on it.`;
    } else {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export function stop() {
  live = false;
  for (const t of stream?.getTracks() ?? []) t.stop();
  stream = null;
  $('camera-start').disabled = false;
  $('camera-freeze').disabled = true;
  $('camera-video').hidden = true;
}

async function start() {
  clearError();
  if (!navigator.mediaDevices?.getUserMedia) throw new Error('This browser gives the page no camera (it needs a secure page: https or localhost).');
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (err) {
    throw cameraError(err);
  }
  const video = $('camera-video');
  video.srcObject = stream;
  video.hidden = false;
  await video.play().catch(() => {});
  live = true;
  frames = 0;
  $('camera-start').disabled = true;
  $('camera-freeze').disabled = false;
  $('camera-status').textContent = 'Live: starting…';
  loop(video).catch((err) => {
    stop();
    fail(err);
  });
}

/// Stops the live view on the last frame and explains it with the chosen method.
async function freeze() {
  if (!live) return;
  live = false;
  const { image } = get();
  stop();
  if (!image) return;
  const blob = await new Promise((r) => image.canvas.toBlob(r, 'image/jpeg', 0.92));
  set({ image: { ...image, blob } });
  $('camera-status').textContent = `Frozen after ${frames} live frames.`;
  await analyseImage();
}

export function isLive() {
  return live;
}

export function render() {}

export function init() {
  $('camera-start').addEventListener('click', guard(start));
  $('camera-freeze').addEventListener('click', guard(freeze));
}
