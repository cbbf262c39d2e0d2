// Debian's Chromium, driven by playwright-core (never a downloaded browser), with the flags the
// project uses (DEVELOPERS.md): WebGPU on SwiftShader (Vulkan on the CPU) where asked.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const BASE_FLAGS = ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];
const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader'];

/// Chromium's fake camera (a test pattern), allowed without asking: the live camera view's tests.
export const FAKE_CAMERA_FLAGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];

// The profiles made here, removed when the process ends.
const profiles = [];
process.on('exit', () => {
  for (const dir of profiles) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // (a browser still running keeps its profile)
    }
  }
});

/// A persistent context in a fresh user-data-dir (Cache Storage and service workers need one);
/// `extra`: more flags.
export async function launch({ webgpu = true, extra = [] } = {}) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'scorecam-chromium-'));
  const args = [...BASE_FLAGS, ...(webgpu ? WEBGPU_FLAGS : ['--disable-gpu']), ...extra];
  const ctx = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args, viewport: { width: 1280, height: 900 } });
  // Each profile is tens of MB: left behind, a day of test runs fills /tmp. Removed once the
  // process ends (at 'close' Chromium may still be writing to it), never failing a test.
  profiles.push(userDataDir);
  return ctx;
}
