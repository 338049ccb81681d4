package sheetsync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/intake/sheetsync"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/server"
	"github.com/leadify/leadify/syncserver/servertest"
)

const hookPublicURL = "https://leadify.example"

// hookConn is a tenant's sheet connection with its script's secret.
type hookConn struct {
	tn     *servertest.Tenant
	id     uuid.UUID
	secret string
	script string
}

var secretInScript = regexp.MustCompile(`var LEADIFY_SECRET = "([^"]+)";`)

func newHookConn(t *testing.T, env *servertest.Env, name string) *hookConn {
	t.Helper()
	ctx := context.Background()
	tn := env.NewTenant(env.Admin(), name+uuid.NewString()[:6])
	created, err := tn.Seller.Intake.CreateSheetConnection(ctx, connect.NewRequest(&leadifyv1.CreateSheetConnectionRequest{
		StoreId: tn.StoreID.String(), Name: "Commandes", SpreadsheetId: "hook-sheet", Range: "Commandes"}))
	require.NoError(t, err)
	c := &hookConn{tn: tn, id: uuid.MustParse(created.Msg.Connection.Id)}
	c.fetchScript(t, false)
	return c
}

func (c *hookConn) fetchScript(t *testing.T, rotate bool) {
	t.Helper()
	resp, err := c.tn.Seller.Intake.GetSheetScript(context.Background(), connect.NewRequest(&leadifyv1.GetSheetScriptRequest{
		StoreId: c.tn.StoreID.String(), ConnectionId: c.id.String(), Rotate: rotate}))
	require.NoError(t, err)
	m := secretInScript.FindStringSubmatch(resp.Msg.Script)
	require.NotNil(t, m, "the script carries its secret")
	c.secret, c.script = m[1], resp.Msg.Script
	require.Equal(t, sheetsync.HookURL(hookPublicURL, c.tn.StoreID, c.id), resp.Msg.EndpointUrl)
	require.Contains(t, c.script, `"`+resp.Msg.EndpointUrl+`"`)
	require.NotContains(t, c.script, "__LEADIFY_")
}

func body(conn uuid.UUID, ts time.Time, nonce string) []byte {
	b, _ := json.Marshal(sheetsync.HookBody{Connection: conn.String(), TS: ts.Unix(), Nonce: nonce, Event: "edit"})
	return b
}

// post sends a call to the hook of store/conn and returns its status and error code.
func post(t *testing.T, env *servertest.Env, store, conn uuid.UUID, b []byte, sig string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, sheetsync.HookURL(env.URL, store, conn), bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(sheetsync.SignatureHeader, sig)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Error struct{ Code string } `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out.Error.Code
}

// queued counts the sheet-change syncs queued for a connection.
func queued(t *testing.T, env *servertest.Env, c *hookConn) int {
	t.Helper()
	var n int
	env.InStore(func(tx *postgres.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'intake_sheet_sync'
AND args->>'source' = $1 AND (args->>'changed')::boolean`, c.id.String()).Scan(&n)
	}, c.tn.StoreID)
	return n
}

func TestSheetHook(t *testing.T) {
	t.Parallel()
	// Jobs are not worked here: what the hook queues stays visible.
	env := servertest.Start(t, func(c *server.Config) { c.Billing.PublicURL = hookPublicURL; c.DisableJobs = true })
	a := newHookConn(t, env, "hooka")
	b := newHookConn(t, env, "hookb")
	now := time.Now()

	t.Run("valid", func(t *testing.T) {
		msg := body(a.id, now, uuid.NewString())
		status, code := post(t, env, a.tn.StoreID, a.id, msg, sheetsync.Sign(a.secret, msg))
		require.Equal(t, http.StatusAccepted, status, code)
		require.Equal(t, 1, queued(t, env, a))
		// More changes while it waits: still one sync queued.
		for range 3 {
			msg := body(a.id, now, uuid.NewString())
			status, _ := post(t, env, a.tn.StoreID, a.id, msg, sheetsync.Sign(a.secret, msg))
			require.Equal(t, http.StatusAccepted, status)
		}
		require.Equal(t, 1, queued(t, env, a))
	})
	t.Run("replayed", func(t *testing.T) {
		msg := body(a.id, now, uuid.NewString())
		sig := sheetsync.Sign(a.secret, msg)
		status, _ := post(t, env, a.tn.StoreID, a.id, msg, sig)
		require.Equal(t, http.StatusAccepted, status)
		status, code := post(t, env, a.tn.StoreID, a.id, msg, sig)
		require.Equal(t, http.StatusConflict, status)
		require.Equal(t, "replayed", code)
	})
	t.Run("forged", func(t *testing.T) {
		msg := body(a.id, now, uuid.NewString())
		for _, sig := range []string{"", "v1=00", sheetsync.Sign("guessed", msg), sheetsync.Sign(a.secret, append(msg, ' '))} {
			status, code := post(t, env, a.tn.StoreID, a.id, msg, sig)
			require.Equal(t, http.StatusUnauthorized, status)
			require.Equal(t, "bad_signature", code)
		}
	})
	t.Run("stale", func(t *testing.T) {
		for _, ts := range []time.Time{now.Add(-sheetsync.HookWindow - time.Minute), now.Add(sheetsync.HookWindow + time.Minute)} {
			msg := body(a.id, ts, uuid.NewString())
			status, code := post(t, env, a.tn.StoreID, a.id, msg, sheetsync.Sign(a.secret, msg))
			require.Equal(t, http.StatusUnauthorized, status)
			require.Equal(t, "stale", code)
		}
	})
	t.Run("unknown connection", func(t *testing.T) {
		other := uuid.New()
		msg := body(other, now, uuid.NewString())
		status, code := post(t, env, a.tn.StoreID, other, msg, sheetsync.Sign(a.secret, msg))
		require.Equal(t, http.StatusNotFound, status)
		require.Equal(t, "unknown_connection", code)
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/hooks/sheets/nope/nope", nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
	})
	t.Run("cross-store", func(t *testing.T) {
		before := queued(t, env, b)
		// A's connection under B's store: not found there.
		msg := body(a.id, now, uuid.NewString())
		status, code := post(t, env, b.tn.StoreID, a.id, msg, sheetsync.Sign(a.secret, msg))
		require.Equal(t, http.StatusNotFound, status, code)
		// B's connection signed with A's secret.
		msg = body(b.id, now, uuid.NewString())
		status, code = post(t, env, b.tn.StoreID, b.id, msg, sheetsync.Sign(a.secret, msg))
		require.Equal(t, http.StatusUnauthorized, status, code)
		// A body for A's connection, signed with B's secret, sent to B's URL.
		msg = body(a.id, now, uuid.NewString())
		status, code = post(t, env, b.tn.StoreID, b.id, msg, sheetsync.Sign(b.secret, msg))
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "wrong_connection", code)
		require.Equal(t, before, queued(t, env, b))
	})
	t.Run("bad bodies", func(t *testing.T) {
		for _, msg := range [][]byte{[]byte("not json"), []byte(`{"connection":"` + a.id.String() + `","ts":1,"nonce":"x"}`),
			bytes.Repeat([]byte(" "), sheetsync.MaxHookBody+1)} {
			status, code := post(t, env, a.tn.StoreID, a.id, msg, sheetsync.Sign(a.secret, msg))
			require.Contains(t, []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}, status, code)
		}
	})
	t.Run("rotated", func(t *testing.T) {
		old := a.secret
		a.fetchScript(t, true)
		require.NotEqual(t, old, a.secret)
		msg := body(a.id, now, uuid.NewString())
		status, _ := post(t, env, a.tn.StoreID, a.id, msg, sheetsync.Sign(old, msg))
		require.Equal(t, http.StatusUnauthorized, status)
		status, _ = post(t, env, a.tn.StoreID, a.id, msg, sheetsync.Sign(a.secret, msg))
		require.Equal(t, http.StatusAccepted, status)
	})
	t.Run("script permission", func(t *testing.T) {
		_, err := a.tn.Agent.Intake.GetSheetScript(context.Background(), connect.NewRequest(&leadifyv1.GetSheetScriptRequest{
			StoreId: a.tn.StoreID.String(), ConnectionId: a.id.String()}))
		require.Contains(t, []connect.Code{connect.CodePermissionDenied, connect.CodeNotFound}, connect.CodeOf(err))
	})
	t.Run("apps script under node", func(t *testing.T) {
		// The shipped script itself, with Google's services stubbed: what it
		// sends is accepted.
		node, err := exec.LookPath("node")
		if err != nil {
			t.Skip("node is not installed")
		}
		dir := t.TempDir()
		harness := a.script + `
var sent = null;
var Utilities = {
  getUuid: function () { return require('crypto').randomUUID(); },
  computeHmacSha256Signature: function (value, key) {
    return Array.from(require('crypto').createHmac('sha256', key).update(value, 'utf8').digest()).map(function (b) { return b > 127 ? b - 256 : b; });
  }
};
var UrlFetchApp = { fetch: function (url, opts) { sent = {url: url, opts: opts}; return { getResponseCode: function () { return 202; }, getContentText: function () { return ''; } }; } };
leadifyOnEdit({});
process.stdout.write(JSON.stringify(sent));
`
		require.NoError(t, os.WriteFile(filepath.Join(dir, "run.js"), []byte(harness), 0o600))
		out, err := exec.Command(node, filepath.Join(dir, "run.js")).Output()
		require.NoError(t, err)
		var sent struct {
			URL  string `json:"url"`
			Opts struct {
				Method  string            `json:"method"`
				Payload string            `json:"payload"`
				Headers map[string]string `json:"headers"`
			} `json:"opts"`
		}
		require.NoError(t, json.Unmarshal(out, &sent))
		require.Equal(t, sheetsync.HookURL(hookPublicURL, a.tn.StoreID, a.id), sent.URL)
		require.Equal(t, "post", sent.Opts.Method)
		path := strings.TrimPrefix(sent.URL, hookPublicURL)
		req, _ := http.NewRequest(http.MethodPost, env.URL+path, strings.NewReader(sent.Opts.Payload))
		for k, v := range sent.Opts.Headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode, fmt.Sprintf("%+v", sent))
	})
}
