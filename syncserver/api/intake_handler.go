package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/audit"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/intake/sheetsync"
	"github.com/leadify/leadify/syncserver/postgres"
)

// MaxImportFileBytes bounds an uploaded file.
const MaxImportFileBytes = 20 << 20

type intakeHandler struct {
	pool   *pgxpool.Pool
	im     *intake.Importer
	sheets *sheetsync.Service
	log    *slog.Logger
}

var _ leadifyv1connect.IntakeServiceHandler = (*intakeHandler)(nil)

// NewIntakeHandler serves IntakeService; sheet connections sync through s.
func NewIntakeHandler(s *sheetsync.Service) leadifyv1connect.IntakeServiceHandler {
	return &intakeHandler{pool: s.Pool, im: &intake.Importer{Pool: s.Pool, Now: s.Now}, sheets: s, log: s.Log}
}

// store parses the request's store id and checks the caller may import there.
func (h *intakeHandler) store(ctx context.Context, id string) (*auth.Actor, uuid.UUID, error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, uuid.Nil, err
	}
	store, err := uuid.Parse(id)
	if err != nil {
		return nil, uuid.Nil, invalidf("store_id: %q is not an id", id)
	}
	if err := a.Require(store, auth.LeadsImport); err != nil {
		return nil, uuid.Nil, err
	}
	return a, store, nil
}

// open reads an uploaded file as a row source.
func openFile(name string, content []byte, format leadifyv1.FileFormat) (intake.Source, func(), error) {
	if len(content) > MaxImportFileBytes {
		return nil, nil, invalidf("content: the file is %d bytes, more than the %d allowed", len(content), MaxImportFileBytes)
	}
	if format == leadifyv1.FileFormat_FILE_FORMAT_UNSPECIFIED {
		format = leadifyv1.FileFormat_FILE_FORMAT_CSV
		if strings.EqualFold(path.Ext(name), ".xlsx") || bytes.HasPrefix(content, []byte("PK\x03\x04")) {
			format = leadifyv1.FileFormat_FILE_FORMAT_XLSX
		}
	}
	var (
		src     intake.Source
		closeFn = func() {}
		err     error
	)
	switch format {
	case leadifyv1.FileFormat_FILE_FORMAT_XLSX:
		var x *intake.XLSX
		if x, err = intake.NewXLSX(bytes.NewReader(content)); err == nil {
			src, closeFn = x, func() { _ = x.Close() }
		}
	case leadifyv1.FileFormat_FILE_FORMAT_CSV:
		src, err = intake.NewCSV(bytes.NewReader(content))
	default:
		return nil, nil, invalidf("format: unknown file format %v", format)
	}
	if err != nil {
		return nil, nil, invalidf("content: %v", err)
	}
	return src, closeFn, nil
}

func specOf(m *leadifyv1.ColumnMapping) intake.Spec {
	var s intake.Spec
	for _, b := range m.GetBindings() {
		s.Bindings = append(s.Bindings, intake.Binding{Field: intake.Field(b.Field), Custom: b.CustomName, Column: b.Column})
	}
	return s
}

func mappingPB(s intake.Spec) *leadifyv1.ColumnMapping {
	out := &leadifyv1.ColumnMapping{}
	for _, b := range s.Bindings {
		out.Bindings = append(out.Bindings, &leadifyv1.ColumnBinding{Field: string(b.Field), CustomName: b.Custom, Column: b.Column})
	}
	return out
}

const hashKeyNote = "This sheet has no order-number column: rows are recognised by phone, product and date, " +
	"so editing one of those makes the row a new lead. Map an order-number column to make updates reliable."

func (h *intakeHandler) PreviewFile(ctx context.Context, req *connect.Request[leadifyv1.PreviewFileRequest]) (*connect.Response[leadifyv1.PreviewFileResponse], error) {
	m := req.Msg
	if _, _, err := h.store(ctx, m.StoreId); err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	n := int(m.Rows)
	if n <= 0 {
		n = 20
	}
	n = min(n, 200)
	src, closeFn, err := openFile(m.FileName, m.Content, m.Format)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	defer closeFn()
	return connect.NewResponse(&leadifyv1.PreviewFileResponse{Preview: preview(src, specOf(m.Mapping), n)}), nil
}

// preview reads up to n rows of src through spec (the suggested mapping when
// spec is empty).
func preview(src intake.Source, spec intake.Spec, n int) *leadifyv1.Preview {
	header := src.Header()
	suggested := intake.Suggest(header)
	resp := &leadifyv1.Preview{Header: header, SuggestedMapping: mappingPB(suggested)}
	if len(spec.Bindings) == 0 {
		spec = suggested
	}
	mapping, err := intake.Resolve(spec, header)
	if err != nil {
		resp.MappingError = err.Error()
		return resp
	}
	resp.KeyedByOrderId = mapping.HasOrderID()
	if !resp.KeyedByOrderId {
		resp.KeyNote = hashKeyNote
	}
	for len(resp.Rows) < n {
		rec, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			resp.Rows = append(resp.Rows, &leadifyv1.PreviewRow{RowNumber: int32(rec.Num),
				RejectReason: string(intake.ReasonTruncated), RejectDetail: err.Error()})
			if rec.Num == 0 {
				break // the source itself failed
			}
			continue
		}
		row := mapping.Parse(rec.Num, rec.Cells, rec.Ragged)
		pr := &leadifyv1.PreviewRow{RowNumber: int32(row.Num), RowKey: row.Key, RejectReason: string(row.Reject), RejectDetail: row.Detail}
		for _, c := range row.Cells {
			pr.Cells = append(pr.Cells, &leadifyv1.CellResult{Field: string(c.Field), CustomName: c.Custom,
				Column: intake.ColumnLetter(c.Column), Raw: c.Raw, Value: c.Value, Error: c.Error, Warning: c.Warning})
		}
		resp.Rows = append(resp.Rows, pr)
	}
	return resp
}

func (h *intakeHandler) ImportFile(ctx context.Context, req *connect.Request[leadifyv1.ImportFileRequest]) (*connect.Response[leadifyv1.ImportFileResponse], error) {
	m := req.Msg
	a, store, err := h.store(ctx, m.StoreId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	src, closeFn, err := openFile(m.FileName, m.Content, m.Format)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	defer closeFn()
	spec := intake.Suggest(src.Header())
	if len(m.GetMapping().GetBindings()) > 0 {
		spec = specOf(m.Mapping)
	}
	mapping, err := intake.Resolve(spec, src.Header())
	if err != nil {
		return nil, toConnect(ctx, h.log, invalidf("mapping: %v", err))
	}
	target := intake.Target{StoreID: store, Source: "file"}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT seller_id FROM stores WHERE id = $1 AND deleted_at IS NULL`, store).Scan(&target.SellerID); err != nil {
			return postgres.Translate(err)
		}
		if target.SourceID, err = intake.FileSource(ctx, tx, store); err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{Actor: a.UserID, Store: store, Action: "leads.file_imported",
			TargetType: "intake_source", TargetID: target.SourceID.String(),
			Summary: map[string]any{"file": m.FileName, "bytes": len(m.Content)}})
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	rep, err := h.im.Run(ctx, target, mapping, src, intake.RunOptions{KeepRows: true})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	resp := &leadifyv1.ImportFileResponse{RunId: rep.RunID, Counts: countsPB(rep.Counts), KeyedByOrderId: rep.HasOrderID}
	for _, r := range rep.Rows {
		resp.Rows = append(resp.Rows, rowReportPB(r.Num, r.Key, r.Outcome, string(r.Reason), r.Detail, r.LeadID, r.DuplicateOf))
	}
	return connect.NewResponse(resp), nil
}

func countsPB(c intake.Counts) *leadifyv1.RunCounts {
	return &leadifyv1.RunCounts{Imported: int32(c.Imported), Updated: int32(c.Updated), Unchanged: int32(c.Unchanged),
		Duplicate: int32(c.Duplicate), Rejected: int32(c.Rejected), Empty: int32(c.Empty)}
}

var outcomePB = map[intake.Outcome]leadifyv1.RowOutcome{
	intake.OutcomeImported: leadifyv1.RowOutcome_ROW_OUTCOME_IMPORTED, intake.OutcomeUpdated: leadifyv1.RowOutcome_ROW_OUTCOME_UPDATED,
	intake.OutcomeUnchanged: leadifyv1.RowOutcome_ROW_OUTCOME_UNCHANGED, intake.OutcomeDuplicate: leadifyv1.RowOutcome_ROW_OUTCOME_DUPLICATE,
	intake.OutcomeRejected: leadifyv1.RowOutcome_ROW_OUTCOME_REJECTED, intake.OutcomeEmpty: leadifyv1.RowOutcome_ROW_OUTCOME_EMPTY,
}

func rowReportPB(num int, key string, o intake.Outcome, reason, detail, leadID, dupOf string) *leadifyv1.RowReport {
	return &leadifyv1.RowReport{RowNumber: int32(num), RowKey: key, Outcome: outcomePB[o], Reason: reason, Detail: detail,
		LeadId: leadID, DuplicateOf: dupOf}
}

const runColumns = `r.id, r.store_id, r.source_id, s.name, r.state, r.started_at, r.finished_at, r.rows_done,
  r.imported, r.updated, r.unchanged, r.duplicate, r.rejected, r.empty, r.error`

func scanRun(row pgx.Row) (*leadifyv1.IntakeRun, error) {
	var (
		id, store, source uuid.UUID
		name, state, msg  string
		started           time.Time
		finished          *time.Time
		done              int32
		c                 leadifyv1.RunCounts
	)
	if err := row.Scan(&id, &store, &source, &name, &state, &started, &finished, &done, &c.Imported, &c.Updated,
		&c.Unchanged, &c.Duplicate, &c.Rejected, &c.Empty, &msg); err != nil {
		return nil, err
	}
	r := &leadifyv1.IntakeRun{Id: id.String(), StoreId: store.String(), SourceId: source.String(), SourceName: name,
		State: state, StartedAt: timestamppb.New(started), RowsDone: done, Counts: &c, Error: msg}
	if finished != nil {
		r.FinishedAt = timestamppb.New(*finished)
	}
	return r, nil
}

func (h *intakeHandler) ListIntakeRuns(ctx context.Context, req *connect.Request[leadifyv1.ListIntakeRunsRequest]) (*connect.Response[leadifyv1.ListIntakeRunsResponse], error) {
	a, store, err := h.store(ctx, req.Msg.StoreId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	n := int(req.Msg.PageSize)
	if n <= 0 {
		n = 50
	}
	n = min(n, 200)
	resp := &leadifyv1.ListIntakeRunsResponse{}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+runColumns+` FROM intake_runs r
JOIN intake_sources s ON s.store_id = r.store_id AND s.id = r.source_id
WHERE r.store_id = $1 ORDER BY r.started_at DESC, r.id LIMIT $2`, store, n)
		if err != nil {
			return err
		}
		resp.Runs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*leadifyv1.IntakeRun, error) { return scanRun(row) })
		return err
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(resp), nil
}

// maxReportRows bounds the rows GetIntakeRun returns.
const maxReportRows = 5000

func (h *intakeHandler) GetIntakeRun(ctx context.Context, req *connect.Request[leadifyv1.GetIntakeRunRequest]) (*connect.Response[leadifyv1.GetIntakeRunResponse], error) {
	a, store, err := h.store(ctx, req.Msg.StoreId)
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	runID, err := uuid.Parse(req.Msg.RunId)
	if err != nil {
		return nil, toConnect(ctx, h.log, invalidf("run_id: %q is not an id", req.Msg.RunId))
	}
	resp := &leadifyv1.GetIntakeRunResponse{}
	err = postgres.InTx(ctx, h.pool, a.Scope(), func(tx *postgres.Tx) error {
		run, err := scanRun(tx.QueryRow(ctx, `SELECT `+runColumns+` FROM intake_runs r
JOIN intake_sources s ON s.store_id = r.store_id AND s.id = r.source_id
WHERE r.store_id = $1 AND r.id = $2`, store, runID))
		if err != nil {
			return postgres.Translate(err)
		}
		resp.Run = run
		rows, err := tx.Query(ctx, `SELECT row_num, row_key, outcome, reason, detail, coalesce(lead_id::text, ''),
  coalesce((SELECT duplicate_of::text FROM leads l WHERE l.store_id = rr.store_id AND l.id = rr.lead_id), '')
FROM intake_run_rows rr WHERE store_id = $1 AND run_id = $2 ORDER BY row_num LIMIT $3`, store, runID, maxReportRows)
		if err != nil {
			return err
		}
		var num int
		var key, outcome, reason, detail, lead, dup string
		_, err = pgx.ForEachRow(rows, []any{&num, &key, &outcome, &reason, &detail, &lead, &dup}, func() error {
			resp.Rows = append(resp.Rows, rowReportPB(num, key, intake.Outcome(outcome), reason, detail, lead, dup))
			return nil
		})
		return err
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, fmt.Errorf("get run: %w", err))
	}
	return connect.NewResponse(resp), nil
}
