// The teaching views, "Inside Score-CAM": one tab per view (www/views/), one store for their state
// (`teach` in store.js), and lessons: a link can open any view in its state and hide controls
// (www/share.js writes and validates the fields; this applies them).
//
//   views/steps.js      step by step: activation maps, masks, masked inputs, scores, build-up
//   views/gradients.js  why not gradients: Grad-CAM weights vs Score-CAM scores, three maps
//   views/faithful.js   deletion and insertion curves, AUCs, Average Drop / Increase
//   views/sanity.js     the cascading randomisation stepper
//   views/camera.js     the live camera
//   views/compare.js    every CAM method on the photo: maps, time, passes, faithfulness
//   views/panel.js      what every view's panel shares
//   teachdata.js        the numbers, computed by the core once per explanation

import { $, make } from './dom.js';
import { get, set, subscribe } from './store.js';
import { fail } from './core.js';
import * as steps from './views/steps.js';
import * as gradients from './views/gradients.js';
import * as faithful from './views/faithful.js';
import * as sanity from './views/sanity.js';
import * as camera from './views/camera.js';
import * as compare from './views/compare.js';

export const TABS = [
  { name: 'steps', label: 'Step by step', view: steps },
  { name: 'gradients', label: 'Why not gradients', view: gradients },
  { name: 'faithful', label: 'Is the map faithful?', view: faithful },
  { name: 'sanity', label: 'Sanity check', view: sanity },
  { name: 'camera', label: 'Live camera', view: camera },
  { name: 'compare', label: 'Compare methods', view: compare },
];
export const HIDEABLE = ['input', 'classes', 'options', 'tabs'];

const setTeach = (patch) => set({ teach: { ...get().teach, ...patch } });

function selectTab(name) {
  setTeach({ tab: get().teach.tab === name ? null : name });
}

function syncTabs() {
  const { tab } = get().teach;
  for (const t of TABS) {
    const button = $(`tab-${t.name}`);
    button.setAttribute('aria-selected', String(t.name === tab));
    button.tabIndex = t.name === tab || (!tab && t === TABS[0]) ? 0 : -1;
    $(`view-${t.name}`).hidden = t.name !== tab;
  }
  $('teach-hint').hidden = Boolean(tab);
}

function syncHidden() {
  const { hidden } = get();
  for (const group of HIDEABLE) document.body.classList.toggle(`hide-${group}`, hidden.includes(group));
  $('show-controls').hidden = hidden.length === 0;
}

let rendering = Promise.resolve();
/// Renders the open view; `changed`: the teach fields that changed, or null for everything. Views
/// drop the results of an older render themselves (a curve still computing never holds up a
/// channel's picture).
function renderOpen(changed) {
  const tab = TABS.find((t) => t.name === get().teach.tab);
  if (!tab) return rendering;
  rendering = Promise.resolve(tab.view.render(changed)).catch((err) => {
    if (err?.name !== 'AbortError') fail(err);
  });
  return rendering;
}

/// Resolves once the open view has drawn what the store holds now (tests and scripts).
export function whenRendered() {
  return rendering;
}

export function init() {
  const list = $('teach-tabs');
  list.replaceChildren(...TABS.map((t) => {
    const b = make('button', { type: 'button', id: `tab-${t.name}`, textContent: t.label });
    b.setAttribute('role', 'tab');
    b.setAttribute('aria-controls', `view-${t.name}`);
    b.addEventListener('click', () => selectTab(t.name));
    return b;
  }));
  // Arrow keys move between tabs (the WAI-ARIA tabs pattern).
  list.addEventListener('keydown', (e) => {
    const i = TABS.findIndex((t) => t.name === e.target.id?.replace(/^tab-/, ''));
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[e.key];
    if (i < 0 || next === undefined) return;
    e.preventDefault();
    const t = TABS[(next + TABS.length) % TABS.length];
    $(`tab-${t.name}`).focus();
    setTeach({ tab: t.name });
  });
  $('show-controls').addEventListener('click', () => set({ hidden: [] }));
  for (const t of TABS) t.view.init();
  syncTabs();
  syncHidden();
  let last = { ...get().teach };
  subscribe((s, changed) => {
    if ('hidden' in changed) syncHidden();
    if ('image' in changed && s.image?.source.kind !== 'camera' && camera.isLive()) camera.stop();
    if ('teach' in changed) {
      const diff = Object.fromEntries(Object.keys(s.teach).filter((k) => s.teach[k] !== last[k]).map((k) => [k, true]));
      last = { ...s.teach };
      if (diff.tab) {
        syncTabs();
        renderOpen(null);
      } else if (Object.keys(diff).length) {
        renderOpen(diff);
      }
    }
    if ('result' in changed && !s.result?.partial) renderOpen(null);
    else if ('view' in changed) renderOpen({ view: true });
  });
}

