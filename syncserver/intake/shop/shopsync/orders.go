package shopsync

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/intake"
	"github.com/leadify/leadify/syncserver/intake/shop"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/syncer"
)

// An order goes through the intake pipeline as one row of these columns, so
// shop leads get the same row keys ("id:<order id>" under the connection's
// source), checksums, customers and duplicate marking as sheets and files.
var orderHeader = []string{"order_id", "date", "customer_name", "phone", "city", "address", "product", "sku", "qty", "price",
	"note", "shop_ref", "shop_status", "shop_city"}

var orderMapping = func() *intake.Mapping {
	spec := intake.Spec{}
	for _, f := range []intake.Field{intake.FieldOrderID, intake.FieldDate, intake.FieldName, intake.FieldPhone, intake.FieldCity,
		intake.FieldAddress, intake.FieldProduct, intake.FieldSKU, intake.FieldQty, intake.FieldPrice, intake.FieldNote} {
		spec.Bindings = append(spec.Bindings, intake.Binding{Field: f, Column: string(f)})
	}
	for _, c := range []string{"shop_ref", "shop_status", "shop_city"} {
		spec.Bindings = append(spec.Bindings, intake.Binding{Field: intake.FieldCustom, Custom: c, Column: c})
	}
	m, err := intake.Resolve(spec, orderHeader)
	if err != nil {
		panic(err)
	}
	return m
}()

// Cells turns an order into its intake row. A city the city list does not
// know is not a reason to lose the order: it goes into the address and the
// shop_city field, and the agent settles it on the call.
func Cells(o shop.Order) []string {
	cityText, address, shopCity := strings.TrimSpace(o.City), strings.TrimSpace(o.Address), ""
	if cityText != "" {
		if _, err := city.Resolve(cityText); err != nil {
			shopCity = cityText
			address = strings.TrimSpace(strings.Trim(address+", "+cityText, ", "))
			cityText = ""
		}
	}
	var names, skus []string
	qty := 0
	for _, it := range o.Items {
		if it.Qty > 1 {
			names = append(names, fmt.Sprintf("%s ×%d", it.Name, it.Qty))
		} else {
			names = append(names, it.Name)
		}
		if it.SKU != "" {
			skus = append(skus, it.SKU)
		}
		qty += int(max(it.Qty, 1))
	}
	product := strings.Join(names, " + ")
	if len(o.Items) == 1 {
		product = o.Items[0].Name
	}
	qty = min(max(qty, 1), 9999)
	date := ""
	if !o.Created.IsZero() {
		date = o.Created.UTC().Format(time.RFC3339)
	}
	return []string{o.ID, date, o.Name, o.Phone, cityText, address, product, strings.Join(skus, ","), strconv.Itoa(qty),
		o.Total.Plain(), o.Note, o.Ref, o.Status, shopCity}
}

// sliceSource feeds rows to the importer.
type sliceSource struct {
	recs []intake.Record
	i    int
}

func (s *sliceSource) Header() []string { return orderHeader }

func (s *sliceSource) Next() (intake.Record, error) {
	if s.i >= len(s.recs) {
		return intake.Record{}, io.EOF
	}
	s.i++
	return s.recs[s.i-1], nil
}

// incoming is one order event to apply: from a stored webhook or a
// backfill page.
type incoming struct {
	webhook uuid.UUID // uuid.Nil for a backfill
	topic   string
	action  shop.Action
	order   shop.Order // only ID for a bare cancellation
	dead    string     // why the webhook is unreadable
}

// Result counts what an apply did.
type Result struct {
	Imported, Updated, Unchanged, Duplicate, Rejected, SkippedNotCOD, Cancelled, LateChanges, Ignored, Dead int
}

// Add adds r2's counts.
func (r *Result) Add(r2 Result) {
	r.Imported += r2.Imported
	r.Updated += r2.Updated
	r.Unchanged += r2.Unchanged
	r.Duplicate += r2.Duplicate
	r.Rejected += r2.Rejected
	r.SkippedNotCOD += r2.SkippedNotCOD
	r.Cancelled += r2.Cancelled
	r.LateChanges += r2.LateChanges
	r.Ignored += r2.Ignored
	r.Dead += r2.Dead
}

type orderState struct {
	order    shop.Order
	hasOrder bool
	cancel   bool
	topic    string
	num      int // its row number in the importer's run, 0 when not imported
	outcome  string
	detail   string
	leadID   uuid.UUID
	digest   []byte
}

type mark struct {
	status, err string
}

// cancellable reports whether a shop cancellation still changes a lead in
// status: one the lead rules let move to cancelled, short of confirmed
// (after confirmation the shop's change is recorded, not applied). Updates
// change only the importer's open statuses (new, no answer, callback,
// unreachable).
func cancellable(status string) bool {
	st, err := lead.ParseStatus(status)
	return err == nil && st != lead.StatusConfirmed && lead.CanTransition(st, lead.StatusCancelled)
}

func digestOf(cells []string, cancel bool) []byte {
	h := sha256.New()
	var n [8]byte
	for _, c := range cells {
		binary.LittleEndian.PutUint64(n[:], uint64(len(c)))
		h.Write(n[:])
		h.Write([]byte(c))
	}
	if cancel {
		h.Write([]byte{1})
	}
	return h.Sum(nil)[:16]
}

// apply turns order events of one connection into leads: new orders are
// imported (COD only, unless the connection takes all orders), changes
// update the lead while it is open, cancellations cancel it while it is not
// confirmed; after that a change is recorded on the shop order, not
// applied. Applying the same events again changes nothing.
func (s *Service) apply(ctx context.Context, c Connection, source string, in []incoming) (Result, error) {
	var res Result
	marks := map[uuid.UUID]mark{}
	states := map[string]*orderState{}
	var order []string
	for _, e := range in {
		switch {
		case e.dead != "":
			marks[e.webhook] = mark{"dead", e.dead}
			res.Dead++
			continue
		case e.action == shop.ActionUnknown:
			marks[e.webhook] = mark{"ignored", "topic " + e.topic + " is not an order event"}
			res.Ignored++
			continue
		}
		st := states[e.order.ID]
		if st == nil {
			st = &orderState{}
			states[e.order.ID] = st
			order = append(order, e.order.ID)
		}
		st.topic = e.topic
		if e.action == shop.ActionOrder {
			st.order, st.hasOrder, st.cancel = e.order, true, e.order.Cancelled
		} else {
			st.cancel = true
			if !st.hasOrder {
				st.order.ID = e.order.ID
			}
		}
		if e.webhook != uuid.Nil {
			marks[e.webhook] = mark{"done", ""}
		}
	}
	var recs []intake.Record
	var nums []string
	for _, id := range order {
		st := states[id]
		if !st.hasOrder {
			st.outcome = "cancel_only"
			st.digest = digestOf([]string{id}, true)
			continue
		}
		cells := Cells(st.order)
		st.digest = digestOf(cells, st.cancel)
		if c.CODOnly && !st.order.COD {
			st.outcome, st.detail = "skipped_not_cod", "the shop takes cash-on-delivery orders only"
			res.SkippedNotCOD++
			continue
		}
		st.num = len(recs) + 2
		recs = append(recs, intake.Record{Num: st.num, Cells: cells})
		nums = append(nums, id)
	}
	if len(recs) > 0 {
		var seller uuid.UUID
		err := postgres.InTx(ctx, s.Pool, postgres.StoreScope(c.StoreID), func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, `SELECT seller_id FROM stores WHERE id = $1`, c.StoreID).Scan(&seller)
		})
		if err != nil {
			return res, fmt.Errorf("store %v: %w", c.StoreID, postgres.Translate(err))
		}
		im := &intake.Importer{Pool: s.Pool, Now: s.Now}
		rep, err := im.Run(ctx, intake.Target{StoreID: c.StoreID, SellerID: seller, SourceID: c.ID, Source: c.Platform}, orderMapping,
			&sliceSource{recs: recs}, intake.RunOptions{KeepRows: true})
		if err != nil {
			return res, fmt.Errorf("import orders: %w", err)
		}
		byNum := map[int]intake.RowResult{}
		for _, r := range rep.Rows {
			byNum[r.Num] = r
		}
		for _, id := range nums {
			st := states[id]
			r, ok := byNum[st.num]
			if !ok {
				return res, fmt.Errorf("import orders: no result for order %s", id)
			}
			st.outcome, st.detail = string(r.Outcome), string(r.Reason)
			if r.Detail != "" {
				st.detail = strings.TrimSpace(st.detail + ": " + r.Detail)
			}
			if l, err := uuid.Parse(r.LeadID); err == nil {
				st.leadID = l
			}
			switch r.Outcome {
			case intake.OutcomeImported:
				res.Imported++
			case intake.OutcomeUpdated:
				res.Updated++
			case intake.OutcomeUnchanged:
				res.Unchanged++
			case intake.OutcomeDuplicate:
				res.Duplicate++
			default:
				res.Rejected++
			}
		}
	}
	var r2 Result
	err := syncer.Write(ctx, s.Pool, postgres.StoreScope(c.StoreID), func(w *syncer.Writer) error {
		r2 = Result{}
		return s.settle(ctx, w, c, source, states, order, marks, &r2)
	})
	if err != nil {
		return res, fmt.Errorf("settle orders: %w", postgres.Translate(err))
	}
	res.Cancelled, res.LateChanges = r2.Cancelled, r2.LateChanges
	return res, nil
}

// rowKeysSQL is intake's knownSQL (the recorded lead of keys $3 of source $2) without the checksum.
const rowKeysSQL = `SELECT k.row_key, k.lead_id FROM unnest($3::text[]) AS u(key)
CROSS JOIN LATERAL (SELECT row_key, lead_id FROM intake_rows
  WHERE store_id = $1 AND source_id = $2 AND row_key = u.key OFFSET 0) k`

// shopOrdersSQL reads the digests of the orders $3 of connection $2 of
// store $1: one search of the primary key per order.
// By key, whatever the planner believes of the store: see
// pgtest.RequireKeyed, TestShopOrdersSearchByOrderID.
const shopOrdersSQL = `SELECT o.order_id, o.digest FROM unnest($3::text[]) AS u(id)
CROSS JOIN LATERAL (SELECT order_id, digest FROM shop_orders
  WHERE store_id = (SELECT $1::uuid) AND connection_id = $2 AND order_id = u.id OFFSET 0) o`

// markWebhooksSQL marks the webhooks $2 of store $1 processed, with status
// $3 and error $4: each found and locked by its primary key, in id order,
// then updated by its ctid.
// By key, whatever the planner believes of the store: see
// pgtest.RequireKeyed, TestWebhookUpdatesSearchByID.
const markWebhooksSQL = `UPDATE shop_webhooks w SET status = $3, last_error = $4, attempts = w.attempts + 1, processed_at = now()
FROM (SELECT DISTINCT id FROM unnest($2::uuid[]) AS u(id) ORDER BY id) u,
  LATERAL (SELECT ctid FROM shop_webhooks WHERE store_id = (SELECT $1::uuid) AND id = u.id OFFSET 0 FOR UPDATE) k
WHERE w.ctid = k.ctid`

// lockLeadsSQL reads and locks the leads $2 of store $1 (each once, in id
// order, so two settles wait for each other instead of deadlocking) that
// are not deleted: one primary-key search per lead.
// By key, whatever the planner believes of the store: see
// pgtest.RequireKeyed, TestLockLeadsSearchesByID.
const lockLeadsSQL = `SELECT l.id, l.status FROM (SELECT DISTINCT id FROM unnest($2::uuid[]) AS u(id) ORDER BY id) u,
LATERAL (SELECT id, status FROM leads WHERE store_id = (SELECT $1::uuid) AND id = u.id AND deleted_at IS NULL
  OFFSET 0 FOR UPDATE) l
ORDER BY l.id`

// settle finishes an apply in one transaction: cancellations of open
// leads, late changes recorded, the shop orders upserted and the webhooks
// marked.
func (s *Service) settle(ctx context.Context, w *syncer.Writer, c Connection, source string, states map[string]*orderState,
	order []string, marks map[uuid.UUID]mark, res *Result) error {
	store := c.StoreID
	if err := w.Lock(store); err != nil {
		return err
	}
	now := s.now().UTC()
	if len(order) > 0 {
		keys := make([]string, len(order))
		for i, id := range order {
			keys[i] = "id:" + id
		}
		// Each key and order is one index probe (LATERAL): with statistics
		// older than a large backfill, "= ANY($3)" was planned as a read of
		// the connection's every row, growing with each batch (the sheet
		// import's look-ups had the same quadratic plan).
		rows, err := w.Tx.Query(ctx, rowKeysSQL, store, c.ID, keys)
		if err != nil {
			return fmt.Errorf("row keys: %w", err)
		}
		var key string
		var leadID uuid.UUID
		if _, err := pgx.ForEachRow(rows, []any{&key, &leadID}, func() error {
			if st := states[strings.TrimPrefix(key, "id:")]; st != nil && st.leadID == uuid.Nil {
				st.leadID = leadID
			}
			return nil
		}); err != nil {
			return fmt.Errorf("row keys: %w", err)
		}
		prev := map[string][]byte{}
		rows, err = w.Tx.Query(ctx, shopOrdersSQL, store, c.ID, order)
		if err != nil {
			return fmt.Errorf("shop orders: %w", err)
		}
		var oid string
		var dg []byte
		if _, err := pgx.ForEachRow(rows, []any{&oid, &dg}, func() error {
			prev[oid] = append([]byte(nil), dg...)
			return nil
		}); err != nil {
			return fmt.Errorf("shop orders: %w", err)
		}
		var leadIDs []uuid.UUID
		for _, id := range order {
			if st := states[id]; st.leadID != uuid.Nil {
				leadIDs = append(leadIDs, st.leadID)
			}
		}
		status := map[uuid.UUID]string{}
		if len(leadIDs) > 0 {
			rows, err = w.Tx.Query(ctx, lockLeadsSQL, store, leadIDs)
			if err != nil {
				return fmt.Errorf("lock leads: %w", err)
			}
			var st string
			if _, err := pgx.ForEachRow(rows, []any{&leadID, &st}, func() error {
				status[leadID] = st
				return nil
			}); err != nil {
				return fmt.Errorf("lock leads: %w", err)
			}
		}
		var cancels []*orderState
		late := map[string]string{}
		for _, id := range order {
			st := states[id]
			ls, has := status[st.leadID]
			if !has {
				continue
			}
			changed := prev[id] != nil && string(prev[id]) != string(st.digest)
			open := ls == "new" || ls == "no_answer" || ls == "callback" || ls == "unreachable"
			switch {
			case st.cancel && cancellable(ls):
				cancels = append(cancels, st)
			case !changed || open || (st.cancel && ls == "cancelled"):
				// Nothing new, or an open lead the import already updated.
			default:
				what := "changed"
				if st.cancel {
					what = "cancelled"
				}
				late[id] = fmt.Sprintf("%s: order %s in the shop after the lead was %s; not applied", st.topic, what, ls)
			}
		}
		if len(cancels) > 0 {
			first, err := w.Reserve(store, 2*len(cancels))
			if err != nil {
				return err
			}
			b := &pgx.Batch{}
			var evs []mutation.LeadEvent
			for i, st := range cancels {
				from := status[st.leadID]
				b.Queue(`UPDATE leads SET status = 'cancelled', cancel_reason = $3, version = $4, updated_at = $5, callback_at = NULL
WHERE store_id = $1 AND id = $2`, store, st.leadID, "Cancelled in the shop", first+int64(2*i), now)
				fs, _ := lead.ParseStatus(from)
				evs = append(evs, mutation.LeadEvent{ID: uuid.Must(uuid.NewV7()), StoreID: store, LeadID: st.leadID, Version: first + int64(2*i) + 1,
					CreatedAt: now, Kind: mutation.EventCancel, FromStatus: fs, ToStatus: lead.StatusCancelled,
					Note: "Cancelled in the shop", Data: map[string]string{"source": c.Platform, "order_id": st.order.ID, "topic": st.topic}})
				st.detail = strings.TrimSpace(st.detail + " cancelled in the shop")
			}
			if err := w.Tx.SendBatch(ctx, b).Close(); err != nil {
				return fmt.Errorf("cancel leads: %w", err)
			}
			if err := w.PutEvents(evs...); err != nil {
				return err
			}
			res.Cancelled = len(cancels)
		}
		res.LateChanges = len(late)
		n := len(order)
		var (
			ids      = make([]string, n)
			refs     = make([]string, n)
			leads    = make([]*uuid.UUID, n)
			statuses = make([]string, n)
			cancel   = make([]bool, n)
			cod      = make([]bool, n)
			items    = make([]string, n)
			outcomes = make([]string, n)
			details  = make([]string, n)
			digests  = make([][]byte, n)
			lates    = make([]string, n)
		)
		for i, id := range order {
			st := states[id]
			ids[i], refs[i], statuses[i], cancel[i], cod[i] = id, st.order.Ref, st.order.Status, st.cancel, st.order.COD || !st.hasOrder
			if st.leadID != uuid.Nil {
				l := st.leadID
				leads[i] = &l
			}
			it := st.order.Items
			if it == nil {
				it = []shop.Item{}
			}
			b, err := json.Marshal(it)
			if err != nil {
				return err
			}
			items[i], outcomes[i], details[i], digests[i], lates[i] = string(b), st.outcome, st.detail, st.digest, late[id]
		}
		_, err = w.Tx.Exec(ctx, `INSERT INTO shop_orders AS o (store_id, connection_id, order_id, ref, lead_id, shop_status, cancelled, cod, items,
  outcome, detail, digest, source, first_seen, last_seen, late_changes, last_late_change)
SELECT $1, $2, u.id, u.ref, u.lead, u.status, u.cancel, u.cod, u.items::jsonb, u.outcome, u.detail, u.digest, $3, $4, $4,
  CASE WHEN u.late <> '' THEN 1 ELSE 0 END, u.late
FROM unnest($5::text[], $6::text[], $7::uuid[], $8::text[], $9::bool[], $10::bool[], $11::text[], $12::text[], $13::text[], $14::bytea[], $15::text[])
  AS u(id, ref, lead, status, cancel, cod, items, outcome, detail, digest, late)
ON CONFLICT (store_id, connection_id, order_id) DO UPDATE SET
  ref = CASE WHEN excluded.ref <> '' THEN excluded.ref ELSE o.ref END,
  lead_id = coalesce(excluded.lead_id, o.lead_id),
  shop_status = CASE WHEN excluded.outcome = 'cancel_only' THEN o.shop_status ELSE excluded.shop_status END,
  cancelled = excluded.cancelled OR (excluded.outcome = 'cancel_only' AND o.cancelled),
  cod = CASE WHEN excluded.outcome = 'cancel_only' THEN o.cod ELSE excluded.cod END,
  items = CASE WHEN excluded.outcome = 'cancel_only' THEN o.items ELSE excluded.items END,
  outcome = excluded.outcome, detail = excluded.detail, digest = excluded.digest, last_seen = excluded.last_seen,
  late_changes = o.late_changes + excluded.late_changes,
  last_late_change = CASE WHEN excluded.last_late_change <> '' THEN excluded.last_late_change ELSE o.last_late_change END`,
			store, c.ID, source, now, ids, refs, leads, statuses, cancel, cod, items, outcomes, details, digests, lates)
		if err != nil {
			return fmt.Errorf("record shop orders: %w", err)
		}
	}
	byStatus := map[mark][]uuid.UUID{}
	for id, m := range marks {
		byStatus[m] = append(byStatus[m], id)
	}
	for m, ids := range byStatus {
		if _, err := w.Tx.Exec(ctx, markWebhooksSQL, store, ids, m.status, m.err); err != nil {
			return fmt.Errorf("mark webhooks: %w", err)
		}
	}
	return nil
}
