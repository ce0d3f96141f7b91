/* global fetch, sessionStorage */
/**
 * Reading the JSON API: requests with the API key when one was entered, and the key form. A 401
 * or 403 from a read route shows the form; the key is kept in sessionStorage only.
 */
import { $, setText } from './dom.js';
import { parseExact } from './exact-json.js';

const KEY_STORAGE = 'log-aggregator.api-key';

/** What the page does when a key is needed (stop streams) and when one was entered (read again). */
const keyEvents = { needed: () => {}, entered: () => {} };

// ---- API key ----------------------------------------------------------------------------------

const auth = {
  key: readStoredKey(),
  /** True while the read routes answered 401/403 and no new key was entered since. */
  waiting: false,
};

function readStoredKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

function storeKey(key) {
  try {
    if (key === '') sessionStorage.removeItem(KEY_STORAGE);
    else sessionStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Storage refused (private mode, policy): the key lasts as long as the page.
  }
}

function authHeaders() {
  return auth.key === '' ? {} : { authorization: `Bearer ${auth.key}` };
}

class AuthError extends Error {}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (typeof body?.message === 'string') return body.message;
  } catch {
    // not JSON
  }
  return `${response.status} ${response.statusText}`;
}

async function getJson(path) {
  const response = await fetch(path, { headers: authHeaders(), cache: 'no-store' });
  if (response.status === 401 || response.status === 403) {
    throw new AuthError(await errorMessage(response));
  }
  // /health answers 503 with the same body when something is down: that is its answer.
  if (!response.ok && !(path === 'health' && response.status === 503)) {
    throw new Error(`${path}: ${await errorMessage(response)}`);
  }
  return parseExact(await response.text());
}

function askForKey(message) {
  const hadKey = auth.key !== '';
  auth.waiting = true;
  auth.key = '';
  storeKey('');
  keyEvents.needed();
  const form = $('key-form');
  // Without a key the server's message only says a key is needed, which the form says already.
  setText('key-message', hadKey ? message : '');
  if (form.hidden) {
    form.hidden = false;
    $('key-input').focus();
  }
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('key-input');
  const key = input.value.trim();
  if (key === '') return;
  input.value = '';
  auth.key = key;
  auth.waiting = false;
  storeKey(key);
  $('key-form').hidden = true;
  setText('key-message', '');
  keyEvents.entered();
});

export { auth, authHeaders, AuthError, errorMessage, getJson, askForKey, keyEvents };
