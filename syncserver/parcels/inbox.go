package parcels

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/syncserver/internal/groupcommit"
	"github.com/leadify/leadify/syncserver/postgres"
)

// DefaultInboxWindow is how long the inbox batcher waits for more webhooks
// before committing a batch.
const DefaultInboxWindow = 2 * time.Millisecond

// MaxInboxBatch bounds the webhooks committed together.
const MaxInboxBatch = 512

// inboxFlushers is how many batches may commit at once.
const inboxFlushers = 4

// Delivery is one webhook request as received.
type Delivery struct {
	AccountID   uuid.UUID
	TokenHash   []byte // SHA-256 of the token from the URL
	Carrier     string
	Method      string
	ContentType string
	Query       string
	Body        []byte
}

// Digest identifies a delivery: a byte-identical repeat is the same one.
func (d Delivery) Digest() []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", d.Method, d.Query, d.ContentType)
	h.Write(d.Body)
	return h.Sum(nil)
}

// Outcome is what the inbox did with a delivery.
type Outcome int

// The outcomes of Submit.
const (
	Stored       Outcome = iota + 1 // new, durably stored, processing enqueued
	Duplicate                       // already stored
	Unauthorized                    // no account with this id, carrier and token
)

// Stored is a delivery committed by a batch, for the processing enqueuer.
type StoredDelivery struct {
	Store uuid.UUID
	ID    uuid.UUID
}

// Enqueuer enqueues processing of stored deliveries inside the batch's
// transaction.
type Enqueuer func(ctx context.Context, tx *postgres.Tx, stored []StoredDelivery) error

// Inbox stores webhooks durably with group commit: deliveries arriving
// together share one transaction (one fsync), so throughput is not one
// commit per webhook. It commits through a groupcommit.Group, with flush.
//
// Submit stores a delivery and returns its outcome once committed. It
// fails when its ctx ends first (the delivery may or may not be stored:
// the carrier retries and the digest makes the retry a Duplicate), when
// the batch's transaction fails, or with ErrInboxClosed once the inbox is
// closed. StoreNow stores one in a transaction of its own, without group
// commit: the baseline the benchmarks compare group commit with. Close
// commits every delivery already handed to the batchers (in flight or
// still queued) and answers its Submit, stops the batchers and closes the
// inbox's connections; call it once no webhook request is served (the
// HTTP server drained).
type Inbox struct {
	g       *groupcommit.Group[Delivery, Outcome] // commits with flush
	conns   *postgres.SidePool                    // the inbox's own connections: it acknowledges only what it stored
	enqueue Enqueuer
}

// ErrInboxClosed is Submit's (and StoreNow's) error once the inbox is
// closed: the delivery was not stored, and the carrier retries it.
var ErrInboxClosed = errors.New("webhook inbox closed")

// NewInbox returns an inbox. Its batchers start with the first Submit and
// live until Close (they hold no resources while idle); call Run instead
// to bound them by a context.
func NewInbox(pool *pgxpool.Pool, enqueue Enqueuer, window time.Duration) *Inbox {
	in := &Inbox{conns: postgres.NewSidePool(pool, inboxFlushers), enqueue: enqueue}
	in.g = groupcommit.New(groupcommit.Config[Delivery, Outcome]{Window: window, MaxBatch: MaxInboxBatch,
		Batchers: inboxFlushers, Commit: in.flush, Closed: ErrInboxClosed, OnClose: in.conns.Close, Batcher: in.loop})
	return in
}

// loop is one batcher (Run starts them; Submit starts Run once by
// itself): a method of the inbox's, so that a goroutine dump names it.
func (in *Inbox) loop(ctx context.Context) { in.g.Loop(ctx) }

// Submit stores d with group commit and returns its outcome once its batch
// committed (see Inbox).
func (in *Inbox) Submit(ctx context.Context, d Delivery) (Outcome, error) { return in.g.Submit(ctx, d) }

// StoreNow stores d in a transaction of its own, without group commit (see
// Inbox).
func (in *Inbox) StoreNow(ctx context.Context, d Delivery) (Outcome, error) {
	return in.g.StoreNow(ctx, d)
}

// Run runs the inbox's batchers until ctx ends or the inbox is closed;
// Submit starts them once by itself.
func (in *Inbox) Run(ctx context.Context) { in.g.Run(ctx) }

// Close commits every delivery already handed to the batchers, stops them
// and closes the inbox's connections (see Inbox). Closing it again does
// nothing.
func (in *Inbox) Close() { in.g.Close() }

const insertInbox = `WITH u AS (
  SELECT * FROM unnest($1::int[], $2::uuid[], $3::bytea[], $4::text[], $5::bytea[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::uuid[])
    AS u(idx, account_id, token_hash, carrier, digest, method, content_type, query, body, id)
), auth AS (
  SELECT u.*, a.store_id FROM u JOIN carrier_accounts a
    ON a.id = u.account_id AND a.webhook_token_hash = u.token_hash AND a.carrier = u.carrier AND a.deleted_at IS NULL
), ins AS (
  INSERT INTO webhook_inbox (store_id, id, account_id, carrier, digest, method, content_type, query, body)
  SELECT store_id, id, account_id, carrier, digest, method, content_type, query, body FROM auth
  ON CONFLICT DO NOTHING RETURNING id
)
SELECT auth.idx, auth.store_id, auth.id, ins.id IS NOT NULL FROM auth LEFT JOIN ins ON ins.id = auth.id`

// flush commits one batch in a transaction on the inbox's own connections,
// with the processing of the new deliveries enqueued in it.
func (in *Inbox) flush(ctx context.Context, batch []Delivery) ([]Outcome, func(), error) {
	n := len(batch)
	var (
		idx      = make([]int32, n)
		accounts = make([]uuid.UUID, n)
		hashes   = make([][]byte, n)
		carriers = make([]string, n)
		digests  = make([][]byte, n)
		methods  = make([]string, n)
		cts      = make([]string, n)
		queries  = make([]string, n)
		bodies   = make([][]byte, n)
		ids      = make([]uuid.UUID, n)
	)
	for i, d := range batch {
		idx[i], accounts[i], hashes[i], carriers[i], digests[i] = int32(i), d.AccountID, d.TokenHash, d.Carrier, d.Digest()
		methods[i], cts[i], queries[i], bodies[i], ids[i] = d.Method, d.ContentType, d.Query, d.Body, uuid.Must(uuid.NewV7())
		if bodies[i] == nil {
			bodies[i] = []byte{}
		}
	}
	outcomes := make([]Outcome, n)
	pool, err := in.conns.Get(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("store webhook: %w", err)
	}
	err = postgres.InTx(ctx, pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		for i := range outcomes {
			outcomes[i] = Unauthorized
		}
		rows, err := tx.Query(ctx, insertInbox, idx, accounts, hashes, carriers, digests, methods, cts, queries, bodies, ids)
		if err != nil {
			return err
		}
		var stored []StoredDelivery
		for rows.Next() {
			var (
				i         int32
				store, id uuid.UUID
				inserted  bool
			)
			if err := rows.Scan(&i, &store, &id, &inserted); err != nil {
				return err
			}
			outcomes[i] = Duplicate
			if inserted {
				outcomes[i] = Stored
				stored = append(stored, StoredDelivery{Store: store, ID: id})
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(stored) == 0 || in.enqueue == nil {
			return nil
		}
		return in.enqueue(ctx, tx, stored)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store webhook: %w", err)
	}
	return outcomes, nil, nil
}
