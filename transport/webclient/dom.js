// dom.js — small helpers to build the page. Every string becomes a text
// node (textContent), never markup: what the model, the dossier or another
// user wrote cannot inject HTML.

// h makes an element: props sets attributes (class, text, dataset, on*
// listeners, booleans), children are nodes or strings.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) {
      continue;
    }
    if (k === "class") {
      el.className = v;
    } else if (k === "text") {
      el.textContent = v;
    } else if (k === "dataset") {
      Object.assign(el.dataset, v);
    } else if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "value") {
      el.value = v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) {
      el.append(c);
    }
  }
  return el;
}

// $ is document.getElementById.
export const $ = (id) => document.getElementById(id);

const rtf = typeof Intl !== "undefined" && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;

// relativeTime says how long ago an ISO time was ("3 minutes ago").
export function relativeTime(iso) {
  const t = Date.parse(iso);
  if (!iso || Number.isNaN(t)) {
    return "";
  }
  const s = Math.round((t - Date.now()) / 1000);
  if (!rtf) {
    return new Date(t).toLocaleString();
  }
  const steps = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [7, "day"],
    [4.35, "week"],
    [12, "month"],
  ];
  let v = s;
  for (const [n, unit] of steps) {
    if (Math.abs(v) < n) {
      return unit === "second" && Math.abs(v) < 10 ? "just now" : rtf.format(Math.round(v), unit);
    }
    v /= n;
  }
  return rtf.format(Math.round(v), "year");
}
