package api

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/audit"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/intake/sheets"
	"github.com/leadify/leadify/syncserver/intake/sheets/appsscript"
	"github.com/leadify/leadify/syncserver/intake/sheetsync"
	"github.com/leadify/leadify/syncserver/postgres"
)

// sheetConnection checks the caller may manage the store's integrations and
// parses the connection id.
func (h *intakeHandler) sheetConnection(ctx context.Context, storeID, connID string) (*auth.Actor, uuid.UUID, uuid.UUID, error) {
	a, store, err := h.store(ctx, storeID)
	if err != nil {
		return nil, uuid.Nil, uuid.Nil, err
	}
	id, err := uuid.Parse(connID)
	if err != nil {
		return nil, uuid.Nil, uuid.Nil, invalidf("connection_id: %q is not an id", connID)
	}
	return a, store, id, nil
}

const connectionColumns = `id, store_id, name, spreadsheet_id, sheet_range, header_row, mapping, sync_minutes,
  credentials IS NOT NULL, last_sync_at`

func scanConnection(row pgx.Row) (*leadifyv1.SheetConnection, error) {
	var (
		c          leadifyv1.SheetConnection
		id, store  uuid.UUID
		spec       []byte
		last       *time.Time
		headerRow  int32
		syncMinute int32
	)
	if err := row.Scan(&id, &store, &c.Name, &c.SpreadsheetId, &c.Range, &headerRow, &spec, &syncMinute, &c.HasCredentials, &last); err != nil {
		return nil, err
	}
	var s intake.Spec
	if err := json.Unmarshal(spec, &s); err != nil {
		return nil, err
	}
	c.Id, c.StoreId, c.HeaderRow, c.SyncMinutes, c.Mapping = id.String(), store.String(), headerRow, syncMinute, mappingPB(s)
	if last != nil {
		c.LastSyncAt = timestamppb.New(*last)
	}
	return &c, nil
}

func checkSpec(spec intake.Spec) error {
	if err := spec.Validate(); err != nil {
		return invalidf("mapping: %v", err)
	}
	return nil
}

func (h *intakeHandler) CreateSheetConnection(ctx context.Context, req *connect.Request[leadifyv1.CreateSheetConnectionRequest]) (*connect.Response[leadifyv1.CreateSheetConnectionResponse], error) {
	m := req.Msg
	a, store, err := h.store(ctx, m.StoreId)
	if err == nil {
		err = a.Require(store, auth.IntegrationsManage)
	}
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	name := strings.TrimSpace(m.Name)
	switch {
	case name == "" || len(name) > 100:
		err = invalidf("name: must be 1 to 100 characters")
	case strings.TrimSpace(m.SpreadsheetId) == "" || len(m.SpreadsheetId) > 200:
		err = invalidf("spreadsheet_id: required")
	case m.HeaderRow < 0:
		err = invalidf("header_row: must be 1 or more")
	case m.SyncMinutes < 0 || m.SyncMinutes > 1440:
		err = invalidf("sync_minutes: must be 1 to 1440")
	case len(m.ServiceAccountJson) > 0 && m.OauthToken != "":
		err = invalidf("credentials: give a service account key or an OAuth token, not both")
	case len(m.ServiceAccountJson) > 64<<10 || len(m.OauthToken) > 8<<10:
		err = invalidf("credentials: too large")
	}
	if err == nil {
		_, err = sheets.ParseRange(m.Range)
		if err != nil {
			err = invalidf("range: %v", err)
		}
	}
	spec := specOf(m.Mapping)
	if err == nil {
		err = checkSpec(spec)
	}
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	src := intake.SourceRow{StoreID: store, ID: uuid.New(), Kind: intake.KindSheet, Name: name, Spec: spec,
		SpreadsheetID: strings.TrimSpace(m.SpreadsheetId), Range: m.Range, HeaderRow: int(m.HeaderRow), SyncMinutes: int(m.SyncMinutes)}
	if len(m.ServiceAccountJson) > 0 || m.OauthToken != "" {
		plain, err := json.Marshal(map[string]any{"service_account_json": json.RawMessage(orNull(m.ServiceAccountJson)), "oauth_token": m.OauthToken})
		if err != nil || len(m.ServiceAccountJson) > 0 && !json.Valid(m.ServiceAccountJson) {
			return nil, toConnect(ctx, h.log, invalidf("service_account_json: not JSON"))
		}
		sealed, err := h.sheets.Keyring.Seal(plain, sheetsync.CredentialsAD(store, src.ID))
		if err != nil {
			return nil, toConnect(ctx, h.log, err)
		}
		src.Credentials = []byte(sealed)
	}
	resp := &leadifyv1.CreateSheetConnectionResponse{}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		if err := intake.CreateSource(ctx, tx, src); err != nil {
			return err
		}
		c, err := scanConnection(tx.QueryRow(ctx, `SELECT `+connectionColumns+` FROM intake_sources WHERE store_id = $1 AND id = $2`, store, src.ID))
		if err != nil {
			return err
		}
		resp.Connection = c
		if err := audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: store, Action: "sheet.connected", TargetType: "intake_source",
			TargetID: src.ID.String(), Summary: map[string]any{"name": name, "spreadsheet_id": src.SpreadsheetID, "range": src.Range}}); err != nil {
			return err
		}
		return h.sheets.Enqueue(ctx, tx.Tx, store, src.ID)
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

func orNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}

func (h *intakeHandler) UpdateSheetConnection(ctx context.Context, req *connect.Request[leadifyv1.UpdateSheetConnectionRequest]) (*connect.Response[leadifyv1.UpdateSheetConnectionResponse], error) {
	m := req.Msg
	a, store, id, err := h.sheetConnection(ctx, m.StoreId, m.ConnectionId)
	if err == nil {
		err = a.Require(store, auth.IntegrationsManage)
	}
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	for _, f := range m.UpdateMask {
		if !slices.Contains([]string{"name", "mapping", "header_row", "sync_minutes"}, f) {
			return nil, toConnect(ctx, h.log, invalidf("update_mask: unknown field %q", f))
		}
	}
	has := func(f string) bool { return slices.Contains(m.UpdateMask, f) }
	name := strings.TrimSpace(m.Name)
	switch {
	case has("name") && (name == "" || len(name) > 100):
		err = invalidf("name: must be 1 to 100 characters")
	case has("header_row") && m.HeaderRow < 1:
		err = invalidf("header_row: must be 1 or more")
	case has("sync_minutes") && (m.SyncMinutes < 1 || m.SyncMinutes > 1440):
		err = invalidf("sync_minutes: must be 1 to 1440")
	case has("mapping"):
		err = checkSpec(specOf(m.Mapping))
	}
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	spec, _ := json.Marshal(specOf(m.Mapping))
	resp := &leadifyv1.UpdateSheetConnectionResponse{}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		c, err := scanConnection(tx.QueryRow(ctx, `UPDATE intake_sources SET
  name = CASE WHEN $3 THEN $4 ELSE name END,
  mapping = CASE WHEN $5 THEN $6::jsonb ELSE mapping END,
  header_row = CASE WHEN $7 THEN $8 ELSE header_row END,
  sync_minutes = CASE WHEN $9 THEN $10 ELSE sync_minutes END,
  updated_at = now()
WHERE store_id = $1 AND id = $2 AND kind = 'sheet' AND deleted_at IS NULL
RETURNING `+connectionColumns, store, id, has("name"), name, has("mapping"), spec, has("header_row"), m.HeaderRow,
			has("sync_minutes"), m.SyncMinutes))
		if err != nil {
			return postgres.Translate(err)
		}
		resp.Connection = c
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: store, Action: "sheet.updated", TargetType: "intake_source",
			TargetID: id.String(), Summary: map[string]any{"fields": m.UpdateMask}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *intakeHandler) ListSheetConnections(ctx context.Context, req *connect.Request[leadifyv1.ListSheetConnectionsRequest]) (*connect.Response[leadifyv1.ListSheetConnectionsResponse], error) {
	a, store, err := h.store(ctx, req.Msg.StoreId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	resp := &leadifyv1.ListSheetConnectionsResponse{}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+connectionColumns+` FROM intake_sources
WHERE store_id = $1 AND kind = 'sheet' AND deleted_at IS NULL ORDER BY name, id`, store)
		if err != nil {
			return err
		}
		resp.Connections, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*leadifyv1.SheetConnection, error) { return scanConnection(r) })
		return err
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

func (h *intakeHandler) PreviewSheet(ctx context.Context, req *connect.Request[leadifyv1.PreviewSheetRequest]) (*connect.Response[leadifyv1.PreviewSheetResponse], error) {
	m := req.Msg
	a, store, id, err := h.sheetConnection(ctx, m.StoreId, m.ConnectionId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	var conn *leadifyv1.SheetConnection
	var sealed []byte
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		var err error
		conn, err = scanConnection(tx.QueryRow(ctx, `SELECT `+connectionColumns+` FROM intake_sources
WHERE store_id = $1 AND id = $2 AND kind = 'sheet' AND deleted_at IS NULL`, store, id))
		if err != nil {
			return postgres.Translate(err)
		}
		return tx.QueryRow(ctx, `SELECT credentials FROM intake_sources WHERE store_id = $1 AND id = $2`, store, id).Scan(&sealed)
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	n := int(m.Rows)
	if n <= 0 {
		n = 20
	}
	n = min(n, 200)
	client, err := h.sheets.Client(ctx, store, id, sealed)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	rg, err := sheets.ParseRange(conn.Range)
	if err != nil {
		return nil, toConnect(ctx, h.log, failedf("range: %v", err))
	}
	rg.HeaderRow, rg.ChunkRows, rg.ChunkCount = int(conn.HeaderRow), n, 1
	src, err := client.Open(ctx, conn.SpreadsheetId, rg, 0)
	switch {
	case errors.Is(err, sheets.ErrNotFound):
		return nil, toConnect(ctx, h.log, failedf("the spreadsheet was not found or is not shared with Leadify"))
	case errors.Is(err, intake.ErrMissingHeader):
		return nil, toConnect(ctx, h.log, failedf("the header row %d of the sheet is empty", conn.HeaderRow))
	case err != nil:
		return nil, toConnect(ctx, h.log, err)
	}
	spec := specOf(m.Mapping)
	if len(spec.Bindings) == 0 {
		spec = specOf(conn.Mapping)
	}
	return connect.NewResponse(&leadifyv1.PreviewSheetResponse{Preview: preview(src, spec, n)}), nil
}

func (h *intakeHandler) SyncSheetNow(ctx context.Context, req *connect.Request[leadifyv1.SyncSheetNowRequest]) (*connect.Response[leadifyv1.SyncSheetNowResponse], error) {
	a, store, id, err := h.sheetConnection(ctx, req.Msg.StoreId, req.Msg.ConnectionId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT true FROM intake_sources WHERE store_id = $1 AND id = $2 AND kind = 'sheet' AND deleted_at IS NULL`,
			store, id).Scan(&ok); err != nil {
			return postgres.Translate(err)
		}
		if err := audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: store, Action: "sheet.sync_requested",
			TargetType: "intake_source", TargetID: id.String()}); err != nil {
			return err
		}
		return h.sheets.RequestSync(ctx, tx.Tx, store, id)
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(&leadifyv1.SyncSheetNowResponse{}), nil
}

// watchPoll is how often WatchSheetSync looks at the run.
const watchPoll = 250 * time.Millisecond

func (h *intakeHandler) WatchSheetSync(ctx context.Context, req *connect.Request[leadifyv1.WatchSheetSyncRequest], stream *connect.ServerStream[leadifyv1.WatchSheetSyncResponse]) error {
	a, store, id, err := h.sheetConnection(ctx, req.Msg.StoreId, req.Msg.ConnectionId)
	if err != nil {
		return toConnect(ctx, h.log, err)
	}
	var last *leadifyv1.IntakeRun
	for {
		var run *leadifyv1.IntakeRun
		err := postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
			var ok bool
			if err := tx.QueryRow(ctx, `SELECT true FROM intake_sources WHERE store_id = $1 AND id = $2 AND kind = 'sheet'`, store, id).Scan(&ok); err != nil {
				return postgres.Translate(err)
			}
			r, err := scanRun(tx.QueryRow(ctx, `SELECT `+runColumns+` FROM intake_runs r
JOIN intake_sources s ON s.store_id = r.store_id AND s.id = r.source_id
WHERE r.store_id = $1 AND r.source_id = $2 ORDER BY r.started_at DESC LIMIT 1`, store, id))
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			run = r
			return err
		})
		if err != nil {
			return toConnect(ctx, h.log, err)
		}
		if run != nil && (last == nil || last.Id != run.Id || last.RowsDone != run.RowsDone || last.State != run.State) {
			if err := stream.Send(&leadifyv1.WatchSheetSyncResponse{Run: run}); err != nil {
				return err
			}
			if run.State != "running" {
				return nil
			}
			last = run
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watchPoll):
		}
	}
}

func (h *intakeHandler) GetSheetScript(ctx context.Context, req *connect.Request[leadifyv1.GetSheetScriptRequest]) (*connect.Response[leadifyv1.GetSheetScriptResponse], error) {
	m := req.Msg
	a, store, id, err := h.sheetConnection(ctx, m.StoreId, m.ConnectionId)
	if err == nil {
		err = a.Require(store, auth.IntegrationsManage)
	}
	if err == nil && h.sheets.PublicURL == "" {
		err = failedf("the server has no public URL (--public-url): a sheet script could not reach it")
	}
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	var secret string
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		var err error
		secret, err = h.sheets.HookSecret(ctx, tx, store, id, m.Rotate)
		if err != nil {
			return postgres.Translate(err)
		}
		action := "sheet.script_issued"
		if m.Rotate {
			action = "sheet.script_rotated"
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: store, Action: action, TargetType: "intake_source",
			TargetID: id.String()})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	url := sheetsync.HookURL(h.sheets.PublicURL, store, id)
	return connect.NewResponse(&leadifyv1.GetSheetScriptResponse{Script: appsscript.Render(url, id.String(), secret),
		FileName: appsscript.FileName, EndpointUrl: url}), nil
}
