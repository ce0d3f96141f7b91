/* global document */
/**
 * Small helpers every part of the dashboard uses: finding elements, setting texts (always as
 * text, never as HTML), and formatting numbers, times and delays for a person.
 */

const $ = (id) => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`dashboard: #${id} is missing`);
  return element;
};
const numbers = new Intl.NumberFormat('en-US');
const rates = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const percents = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

function setText(id, text) {
  const element = $(id);
  if (element.textContent !== text) element.textContent = text;
}

function setPill(id, state, text) {
  const element = $(id);
  element.dataset.state = state;
  if (element.textContent !== text) element.textContent = text;
}

/** `2024-05-01T12:00:00.000Z` → `2024-05-01 12:00:00`. */
function shortTime(iso) {
  return typeof iso === 'string'
    ? iso.replace('T', ' ').replace(/(\.\d+)?(Z|[+-]\d\d:\d\d)$/, '')
    : '';
}

/** A delay in milliseconds, to the precision a person reads. */
function delay(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${rates.format(ms / 1000)} s`;
  return duration(ms / 1000);
}

function duration(seconds) {
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className !== undefined) td.className = className;
  return td;
}

/** A row spanning the whole table, for "nothing here" and "… and N more". */
function noteRow(text, columns) {
  const tr = document.createElement('tr');
  tr.className = 'empty';
  const td = cell(text);
  td.colSpan = columns;
  tr.append(td);
  return tr;
}

function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}

export {
  $,
  numbers,
  rates,
  percents,
  setText,
  setPill,
  shortTime,
  delay,
  duration,
  cell,
  noteRow,
  messageOf,
};
