/**
 * Leadify — near real-time sync of this sheet.
 *
 * Paste this file into the sheet (Extensions › Apps Script), save, then run
 * `installLeadify` once and allow it: from then on every edit or change of
 * the sheet asks Leadify to sync it at once. Leadify still syncs it on its
 * own every few minutes, so nothing is lost while this script is off.
 *
 * The secret below signs the calls: keep it in this script only. Rotating it
 * in Leadify makes this copy stop working (download the script again).
 */
var LEADIFY_ENDPOINT = "__LEADIFY_ENDPOINT__";
var LEADIFY_CONNECTION = "__LEADIFY_CONNECTION__";
var LEADIFY_SECRET = "__LEADIFY_SECRET__";

/** Installs the edit and change triggers (run once; again replaces them). */
function installLeadify() {
  ScriptApp.getProjectTriggers().forEach(function (t) {
    if (t.getHandlerFunction() === 'leadifyOnEdit' || t.getHandlerFunction() === 'leadifyOnChange') {
      ScriptApp.deleteTrigger(t);
    }
  });
  var sheet = SpreadsheetApp.getActive();
  ScriptApp.newTrigger('leadifyOnEdit').forSpreadsheet(sheet).onEdit().create();
  ScriptApp.newTrigger('leadifyOnChange').forSpreadsheet(sheet).onChange().create();
  leadifyNotify_('install');
}

function leadifyOnEdit(e) {
  leadifyNotify_('edit');
}

function leadifyOnChange(e) {
  leadifyNotify_(e && e.changeType ? String(e.changeType).toLowerCase() : 'change');
}

/** Signs and sends one "the sheet changed" call. */
function leadifyNotify_(event) {
  var body = JSON.stringify({
    connection: LEADIFY_CONNECTION,
    ts: Math.floor(Date.now() / 1000),
    nonce: Utilities.getUuid(),
    event: event
  });
  var mac = Utilities.computeHmacSha256Signature(body, LEADIFY_SECRET);
  var hex = mac.map(function (b) { return ('0' + (b & 0xff).toString(16)).slice(-2); }).join('');
  var resp = UrlFetchApp.fetch(LEADIFY_ENDPOINT, {
    method: 'post',
    contentType: 'application/json',
    payload: body,
    headers: { 'X-Leadify-Signature': 'v1=' + hex },
    muteHttpExceptions: true
  });
  if (resp.getResponseCode() >= 300) {
    console.warn('Leadify did not accept the change: ' + resp.getResponseCode() + ' ' + resp.getContentText());
  }
}
