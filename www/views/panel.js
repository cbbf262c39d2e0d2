// What every teaching view's panel does: its body (`NAME-body`) when it has something to show,
// else a line (`NAME-empty`) saying what it needs.

import { $ } from '../dom.js';

/// Shows view `name`'s body if `ready`, else `message`; returns `ready`.
export function showBody(name, ready, message) {
  $(`${name}-empty`).hidden = ready;
  $(`${name}-body`).hidden = !ready;
  if (!ready) $(`${name}-empty`).textContent = message;
  return ready;
}
