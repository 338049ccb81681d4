// Package appsscript holds the Google Apps Script shipped with Leadify: the
// seller pastes it into a connected sheet, and on every edit or change it
// calls Leadify's signed endpoint (sheetsync.Hook), which queues a sync of the
// connection at once.
package appsscript

import (
	_ "embed"
	"encoding/json"
	"strings"
)

//go:embed Code.gs
var code string

// FileName is the name the script is offered under.
const FileName = "Leadify.gs"

// Render returns the script for one connection: the endpoint it calls, the
// connection's id and the secret it signs with, written as JavaScript string
// literals.
func Render(endpoint, connection, secret string) string {
	return strings.NewReplacer(
		`"__LEADIFY_ENDPOINT__"`, literal(endpoint),
		`"__LEADIFY_CONNECTION__"`, literal(connection),
		`"__LEADIFY_SECRET__"`, literal(secret),
	).Replace(code)
}

// literal is s as a JavaScript string literal (JSON's, with <, > and &
// escaped: valid JavaScript whatever s holds).
func literal(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
