package shopsync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/intake/shop"
	"github.com/leadify/leadify/syncserver/intake/shop/shopify"
	"github.com/leadify/leadify/syncserver/intake/shop/woocommerce"
	"github.com/leadify/leadify/syncserver/intake/shop/youcan"
	"github.com/leadify/leadify/syncserver/postgres"
)

// MaxProcessBatch bounds the webhooks one processing job applies.
const MaxProcessBatch = 500

// MaxWebhookAttempts is how often a processing job is retried.
const MaxWebhookAttempts = 10

// ProcessArgs is the job processing stored webhooks of one store.
type ProcessArgs struct {
	Store uuid.UUID   `json:"store"`
	IDs   []uuid.UUID `json:"ids"`
}

// Kind implements river.JobArgs.
func (ProcessArgs) Kind() string { return "shop_webhooks" }

// BackfillArgs is the job reading a connection's recent orders.
type BackfillArgs struct {
	Store      uuid.UUID `json:"store"`
	Connection uuid.UUID `json:"connection"`
	Days       int       `json:"days"`
}

// Kind implements river.JobArgs.
func (BackfillArgs) Kind() string { return "shop_backfill" }

// ProductsArgs is the job reading a connection's products and stock.
type ProductsArgs struct {
	Store      uuid.UUID `json:"store"`
	Connection uuid.UUID `json:"connection"`
}

// Kind implements river.JobArgs.
func (ProductsArgs) Kind() string { return "shop_products" }

// Register adds the jobs' workers and subscribes the stock consumers to the
// event bus (call before the bus's workers are built).
func (s *Service) Register(w *river.Workers) error {
	if err := river.AddWorkerSafely(w, &processWorker{s: s}); err != nil {
		return err
	}
	if err := river.AddWorkerSafely(w, &backfillWorker{s: s}); err != nil {
		return err
	}
	if err := river.AddWorkerSafely(w, &productsWorker{s: s}); err != nil {
		return err
	}
	if err := river.AddWorkerSafely(w, &sweepWorker{s: s}); err != nil {
		return err
	}
	if err := river.AddWorkerSafely(w, &recoverWorker{s: s}); err != nil {
		return err
	}
	s.Subscribe()
	return nil
}

// kickInterval is how long stored webhooks wait to be enqueued together.
const kickInterval = 5 * time.Millisecond

// kick notes committed webhooks for processing.
func (s *Service) kick(stored []StoredDelivery) {
	s.kickMu.Lock()
	defer s.kickMu.Unlock()
	if s.kickClosed {
		return // after Close: the recovery sweep enqueues them
	}
	if s.kickWake == nil {
		s.kickWake, s.kickDone = make(chan struct{}, 1), make(chan struct{})
		go s.kickLoop(s.kickWake, s.kickDone)
	}
	if s.kicked == nil {
		s.kicked = map[uuid.UUID][]uuid.UUID{}
	}
	for _, d := range stored {
		s.kicked[d.Store] = append(s.kicked[d.Store], d.ID)
	}
	select {
	case s.kickWake <- struct{}{}:
	default:
	}
}

// kickLoop enqueues processing jobs for the noted webhooks: at most one
// job per store and MaxProcessBatch webhooks each kickInterval. It ends when
// Close closes wake, after enqueueing what was noted until then.
func (s *Service) kickLoop(wake <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for range wake {
		time.Sleep(kickInterval)
		s.enqueueKicked()
	}
	s.enqueueKicked()
}

func (s *Service) enqueueKicked() {
	s.kickMu.Lock()
	pending := s.kicked
	s.kicked = nil
	s.kickMu.Unlock()
	var params []river.InsertManyParams
	for store, ids := range pending {
		for len(ids) > 0 {
			k := min(len(ids), MaxProcessBatch)
			params = append(params, river.InsertManyParams{Args: ProcessArgs{Store: store, IDs: ids[:k]},
				InsertOpts: &river.InsertOpts{MaxAttempts: MaxWebhookAttempts}})
			ids = ids[k:]
		}
	}
	if len(params) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.River().InsertMany(ctx, params); err != nil && s.Log != nil {
		s.Log.Error("enqueue shop webhook processing (the recovery sweep will)", "err", err)
	}
}

// Close closes the webhook inbox — what it was handed is stored and
// answered — then enqueues the processing of everything stored so far and
// stops the goroutine that does it. Close it after the HTTP server has
// drained; closing again does nothing.
func (s *Service) Close() {
	s.Inbox.Close()
	s.kickMu.Lock()
	wake, done := s.kickWake, s.kickDone
	if !s.kickClosed && wake != nil {
		close(wake)
	}
	s.kickClosed = true
	s.kickMu.Unlock()
	if done != nil {
		<-done
	}
}

// EnqueueBackfill queues a backfill in tx.
func (s *Service) EnqueueBackfill(ctx context.Context, tx pgx.Tx, a BackfillArgs) error {
	_, err := s.River().InsertTx(ctx, tx, a, &river.InsertOpts{MaxAttempts: 5})
	return err
}

// EnqueueProducts queues a product read in tx.
func (s *Service) EnqueueProducts(ctx context.Context, tx pgx.Tx, a ProductsArgs) error {
	_, err := s.River().InsertTx(ctx, tx, a, &river.InsertOpts{MaxAttempts: 5})
	return err
}

type processWorker struct {
	river.WorkerDefaults[ProcessArgs]
	s *Service
}

// Work applies the job's webhooks (and any other pending ones of the
// store, up to MaxProcessBatch: when jobs queue up the first takes what has
// accumulated and the others find it done).
func (w *processWorker) Work(ctx context.Context, job *river.Job[ProcessArgs]) error {
	_, err := w.s.ProcessWebhooks(ctx, job.Args.Store, job.Args.IDs)
	return err
}

type storedHook struct {
	id, conn        uuid.UUID
	platform, topic string
	body            []byte
}

// failWebhooksSQL counts a failed attempt, with error $3, against the
// pending webhooks $2 of store $1, those tried $4 times becoming dead: one
// primary-key search per webhook (see markWebhooksSQL).
const failWebhooksSQL = `UPDATE shop_webhooks w SET attempts = w.attempts + 1, last_error = $3,
  status = CASE WHEN w.attempts + 1 >= $4 THEN 'dead' ELSE w.status END
FROM (SELECT DISTINCT id FROM unnest($2::uuid[]) AS u(id) ORDER BY id) u,
  LATERAL (SELECT ctid FROM shop_webhooks WHERE store_id = (SELECT $1::uuid) AND id = u.id AND status = 'pending'
    OFFSET 0 FOR UPDATE) k
WHERE w.ctid = k.ctid`

// ProcessWebhooks applies pending stored webhooks of a store: ids, and
// others waiting, oldest first. Unreadable ones are marked dead, unknown
// topics ignored; both are acknowledged and kept.
func (s *Service) ProcessWebhooks(ctx context.Context, store uuid.UUID, ids []uuid.UUID) (Result, error) {
	var res Result
	// Jobs of one store wait here, not on its scope lock in Postgres, so
	// they hold no pool connection the inbox needs; the first takes what
	// has accumulated and the next find it done.
	unlock := s.stripe(store)
	defer unlock()
	var list []storedHook
	conns := map[uuid.UUID]Connection{}
	err := postgres.InTx(ctx, s.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, connection_id, platform, topic, body FROM shop_webhooks
WHERE store_id = $1 AND status = 'pending' AND (id = ANY($2) OR attempts = 0) ORDER BY received_at, id LIMIT $3`, store, ids, MaxProcessBatch)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storedHook, error) {
			var h storedHook
			return h, r.Scan(&h.id, &h.conn, &h.platform, &h.topic, &h.body)
		})
		if err != nil {
			return err
		}
		for _, h := range list {
			if _, ok := conns[h.conn]; ok {
				continue
			}
			rows, err := tx.Query(ctx, `SELECT `+connectionColumns+` FROM shop_connections WHERE store_id = $1 AND id = $2`, store, h.conn)
			if err != nil {
				return err
			}
			c, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (Connection, error) { return scanConnection(r) })
			if err != nil {
				return err
			}
			conns[h.conn] = c
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("load shop webhooks: %w", postgres.Translate(err))
	}
	byConn := map[uuid.UUID][]incoming{}
	var connOrder []uuid.UUID
	for _, h := range list {
		if _, ok := byConn[h.conn]; !ok {
			connOrder = append(connOrder, h.conn)
		}
		byConn[h.conn] = append(byConn[h.conn], Parse(h.id, h.platform, h.topic, h.body))
	}
	for _, id := range connOrder {
		r, err := s.apply(ctx, conns[id], "webhook", byConn[id])
		if err != nil {
			// Counted against the webhooks, so a failing one is retried by
			// its own job only (not picked up by every job of the store) and
			// given up on — dead, kept, replayable — after
			// MaxWebhookAttempts.
			ids := make([]uuid.UUID, len(byConn[id]))
			for i, e := range byConn[id] {
				ids[i] = e.webhook
			}
			rerr := postgres.InTx(context.WithoutCancel(ctx), s.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
				_, err := tx.Exec(ctx, failWebhooksSQL, store, ids, err.Error(), MaxWebhookAttempts)
				return err
			})
			return res, errors.Join(err, rerr)
		}
		res.Add(r)
	}
	return res, nil
}

// Parse reads a stored webhook into an order event.
func Parse(id uuid.UUID, platform, topic string, body []byte) incoming {
	e := incoming{webhook: id, topic: topic}
	var parse func([]byte) (shop.Order, error)
	switch platform {
	case shop.Shopify:
		e.action, parse = shopify.Classify(topic), shopify.ParseOrder
	case shop.WooCommerce:
		e.action, parse = woocommerce.Classify(topic), woocommerce.ParseOrder
	case shop.YouCan:
		e.action, parse = youcan.Classify(topic), youcan.ParseOrder
	default:
		e.dead = "unknown platform " + platform
		return e
	}
	if e.action == shop.ActionUnknown {
		return e
	}
	o, err := parse(body)
	if err != nil && e.action == shop.ActionCancel {
		// A deletion carries the id alone.
		var id string
		if id, err = shop.ParseID(body); err == nil {
			o = shop.Order{ID: id, Cancelled: true}
		}
	}
	if err != nil {
		e.dead = err.Error()
		return e
	}
	e.order = o
	return e
}

type backfillWorker struct {
	river.WorkerDefaults[BackfillArgs]
	s *Service
}

func (w *backfillWorker) Timeout(*river.Job[BackfillArgs]) time.Duration { return time.Hour }

func (w *backfillWorker) Work(ctx context.Context, job *river.Job[BackfillArgs]) error {
	_, err := w.s.Backfill(ctx, job.Args.Store, job.Args.Connection, job.Args.Days)
	return err
}

func (s *Service) connection(ctx context.Context, store, id uuid.UUID) (Connection, error) {
	var c Connection
	err := postgres.InTx(ctx, s.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		var err error
		c, err = LoadConnection(ctx, tx, id)
		return err
	})
	return c, err
}

// Backfill reads the orders of the last days (0: the connection's window)
// through the shop's API and applies them page by page, like webhooks: an
// order a webhook already brought keeps its lead.
func (s *Service) Backfill(ctx context.Context, store, id uuid.UUID, days int) (Result, error) {
	var res Result
	c, err := s.connection(ctx, store, id)
	if errors.Is(err, postgres.ErrNotFound) {
		return res, river.JobCancel(err)
	}
	if err != nil {
		return res, err
	}
	if days <= 0 {
		days = c.BackfillDays
	}
	client, err := s.Client(c)
	if err == nil {
		since := s.now().Add(-time.Duration(days) * 24 * time.Hour)
		err = client.Orders(ctx, since, func(page []shop.Order) error {
			in := make([]incoming, len(page))
			for i, o := range page {
				in[i] = incoming{topic: "backfill", action: shop.ActionOrder, order: o}
			}
			unlock := s.stripe(store)
			r, err := s.apply(ctx, c, "backfill", in)
			unlock()
			res.Add(r)
			return err
		})
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	uerr := postgres.InTx(context.WithoutCancel(ctx), s.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE shop_connections SET last_backfill_at = CASE WHEN $3 = '' THEN now() ELSE last_backfill_at END,
  last_backfill_error = $3 WHERE store_id = $1 AND id = $2`, store, id, msg)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("backfill %s connection %v: %w", c.Platform, id, err)
	}
	return res, uerr
}

type productsWorker struct {
	river.WorkerDefaults[ProductsArgs]
	s *Service
}

func (w *productsWorker) Work(ctx context.Context, job *river.Job[ProductsArgs]) error {
	_, err := w.s.SyncProducts(ctx, job.Args.Store, job.Args.Connection)
	return err
}

// SyncProducts reads the connection's catalogue and stores every variant
// with its stock; it returns how many it stored.
func (s *Service) SyncProducts(ctx context.Context, store, id uuid.UUID) (int, error) {
	c, err := s.connection(ctx, store, id)
	if errors.Is(err, postgres.ErrNotFound) {
		return 0, river.JobCancel(err)
	}
	if err != nil {
		return 0, err
	}
	client, err := s.Client(c)
	if err != nil {
		return 0, err
	}
	n := 0
	err = client.Products(ctx, func(page []shop.Product) error {
		ext := make([]string, len(page))
		skus := make([]string, len(page))
		names := make([]string, len(page))
		prices := make([]int64, len(page))
		stocks := make([]*int32, len(page))
		for i, p := range page {
			ext[i], skus[i], names[i], prices[i], stocks[i] = p.ExternalID, p.SKU, p.Name, int64(p.Price), p.Stock
		}
		n += len(page)
		return postgres.InTx(ctx, s.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO shop_products (store_id, connection_id, external_id, sku, name, price, stock, updated_at)
SELECT $1, $2, e, k, n, p, st, now() FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::int[]) AS u(e, k, n, p, st)
ON CONFLICT (store_id, connection_id, external_id) DO UPDATE SET sku = excluded.sku, name = excluded.name, price = excluded.price,
  stock = excluded.stock, updated_at = excluded.updated_at`, store, id, ext, skus, names, prices, stocks)
			return err
		})
	})
	if err != nil {
		return n, fmt.Errorf("products of %s connection %v: %w", c.Platform, id, err)
	}
	err = postgres.InTx(ctx, s.Pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE shop_connections SET products_synced_at = now() WHERE store_id = $1 AND id = $2`, store, id)
		return err
	})
	return n, err
}

// SweepArgs is the periodic job that queues a short backfill of every
// connection: the safety net for webhooks a shop never delivered (a
// WooCommerce webhook disabled after failures, an app reinstalled).
type SweepArgs struct {
	Days int `json:"days"`
}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "shop_backfill_sweep" }

// Periodic returns the sweep, every interval over the last days.
func Periodic(interval time.Duration, days int) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
		return SweepArgs{Days: days}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: interval}}
	}, nil)
}

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	s *Service
}

// Work queues one backfill per live connection, in one transaction.
func (w *sweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	return postgres.InTx(ctx, w.s.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT store_id, id FROM shop_connections WHERE deleted_at IS NULL`)
		if err != nil {
			return err
		}
		var params []river.InsertManyParams
		var store, id uuid.UUID
		if _, err := pgx.ForEachRow(rows, []any{&store, &id}, func() error {
			params = append(params, river.InsertManyParams{Args: BackfillArgs{Store: store, Connection: id, Days: job.Args.Days},
				InsertOpts: &river.InsertOpts{MaxAttempts: 3}})
			return nil
		}); err != nil {
			return err
		}
		if len(params) == 0 {
			return nil
		}
		_, err = w.s.River().InsertManyTx(ctx, tx.Tx, params)
		return err
	})
}

// RecoverArgs is the periodic job queuing processing for webhooks stored
// but left pending for more than a minute (never enqueued: the server died
// between the inbox's commit and the enqueue; or their job died).
type RecoverArgs struct{}

// Kind implements river.JobArgs.
func (RecoverArgs) Kind() string { return "shop_webhooks_recover" }

// PeriodicRecover returns the recovery sweep, every interval.
func PeriodicRecover(interval time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
		return RecoverArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: interval}}
	}, nil)
}

type recoverWorker struct {
	river.WorkerDefaults[RecoverArgs]
	s *Service
}

func (w *recoverWorker) Work(ctx context.Context, _ *river.Job[RecoverArgs]) error {
	_, err := w.s.recoverOlder(ctx, time.Minute)
	return err
}

// Recover queues processing for every store with webhooks still pending —
// never enqueued, or their job died with its server — so they need not wait
// for River to rescue a job. It returns how many stores it queued.
func (s *Service) Recover(ctx context.Context) (int, error) {
	return s.recoverOlder(ctx, 0)
}

func (s *Service) recoverOlder(ctx context.Context, age time.Duration) (int, error) {
	n := 0
	err := postgres.InTx(ctx, s.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT store_id FROM shop_webhooks
WHERE status = 'pending' AND attempts = 0 AND received_at < now() - make_interval(secs => $1)`, age.Seconds())
		if err != nil {
			return err
		}
		stores, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil || len(stores) == 0 {
			return err
		}
		params := make([]river.InsertManyParams, len(stores))
		for i, st := range stores {
			params[i] = river.InsertManyParams{Args: ProcessArgs{Store: st}, InsertOpts: &river.InsertOpts{MaxAttempts: MaxWebhookAttempts}}
		}
		n = len(stores)
		_, err = s.River().InsertManyTx(ctx, tx.Tx, params)
		return err
	})
	return n, err
}
