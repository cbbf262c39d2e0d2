// DOM helpers. Nothing that comes from a file, a URL or a shared link is ever inserted as HTML:
// text goes in through textContent, elements through the DOM API.

export const $ = (id) => document.getElementById(id);

/// A new `tag` element with `props` assigned (textContent, value, title, type, …).
export function make(tag, props = {}) {
  return Object.assign(document.createElement(tag), props);
}
