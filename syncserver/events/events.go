// Package events is Leadify's domain-event bus. A change that other
// capabilities react to (a lead confirmed, a parcel delivered or returned, a
// store created) writes a row to domain_events in the same transaction as the
// change, and enqueues — in that transaction too, through River — one job per
// interested consumer and store naming all the events it publishes (Publish
// is PublishMany of one event, so every event reaches its consumers by that
// one path). A consumer's effect commits together with a row in
// event_consumptions keyed by (event, consumer), so a job that runs twice
// (a crash after commit, a retry) changes nothing the second time.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/leadify/leadify/syncserver/postgres"
)

// Kind names what happened.
type Kind string

// The event kinds. Later capabilities add theirs here.
const (
	StoreCreated    Kind = "store.created"
	LeadConfirmed   Kind = "lead.confirmed"
	LeadCancelled   Kind = "lead.cancelled"
	ParcelDelivered Kind = "parcel.delivered"
	ParcelRefused   Kind = "parcel.refused"
	ParcelReturned  Kind = "parcel.returned"
	ParcelCancelled Kind = "parcel.cancelled"
)

// Event is a domain event as published.
type Event struct {
	ID            uuid.UUID // set by Publish and PublishMany when zero
	Store         uuid.UUID
	Kind          Kind
	AggregateType string
	AggregateID   uuid.UUID
	Actor         uuid.UUID // uuid.Nil for the system
	Payload       any       // marshalled to JSON
	OccurredAt    time.Time // read back by consumers
	RawPayload    json.RawMessage
}

// Handler applies one consumer's effect of an event inside tx, which is scoped
// to the event's store. Returning an error rolls the effect back and lets River
// retry the job with backoff.
type Handler func(ctx context.Context, tx *postgres.Tx, ev Event) error

// BatchHandler applies one consumer's effect of several events of one store
// inside tx, scoped to that store, in one go: a consumer that can apply them
// with a few set-based statements (and take the store's write lock once)
// subscribes with SubscribeBatch. The events come in the order they occurred
// (occurred_at, then id), each one not yet consumed by this consumer.
// Returning an error rolls every effect back.
type BatchHandler func(ctx context.Context, tx *postgres.Tx, evs []Event) error

type consumer struct {
	kinds   map[Kind]bool
	handler Handler
	batch   BatchHandler
	every   time.Duration // a batch consumer's least time between batches of a store
}

// handle applies evs in tx with the consumer's batch handler, or its
// per-event handler one event after the other.
func (c consumer) handle(ctx context.Context, tx *postgres.Tx, evs []Event) error {
	if c.batch != nil {
		return c.batch(ctx, tx, evs)
	}
	for _, ev := range evs {
		if err := c.handler(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}

// kindList is the consumer's kinds as text, for queries.
func (c consumer) kindList() []string {
	ks := make([]string, 0, len(c.kinds))
	for k := range c.kinds {
		ks = append(ks, string(k))
	}
	sort.Strings(ks)
	return ks
}

// Bus routes events to consumers.
type Bus struct {
	pool      *pgxpool.Pool
	mu        sync.RWMutex
	consumers map[string]consumer
	river     *river.Client[pgx.Tx]
	pace      pacer // batch jobs of one (store, consumer), one at a time
}

// NewBus returns a bus with no consumers.
func NewBus(pool *pgxpool.Pool) *Bus {
	return &Bus{pool: pool, consumers: map[string]consumer{}, pace: pacer{busy: map[batchKey]bool{}, last: map[batchKey]time.Time{}}}
}

// Subscribe registers a consumer by a stable name (it keys idempotency, so never
// rename one) for the given kinds. Call it before Workers.
func (b *Bus) Subscribe(name string, h Handler, kinds ...Kind) {
	ks := map[Kind]bool{}
	for _, k := range kinds {
		ks[k] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.consumers[name] = consumer{kinds: ks, handler: h}
}

// SubscribeBatch is Subscribe for a consumer that applies many events of a
// store at once. Single events (Publish) reach it as batches of one. With
// every > 0, the consumer's batches of a store begin at least every apart
// in one instance, the events that arrive meanwhile waiting for the next:
// for a consumer whose batch costs about the same whatever its size (a
// customer's history rewritten on all their open leads), so that under load
// it runs fewer, larger batches instead of holding the store's write lock
// back to back.
func (b *Bus) SubscribeBatch(name string, every time.Duration, h BatchHandler, kinds ...Kind) {
	ks := map[Kind]bool{}
	for _, k := range kinds {
		ks[k] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.consumers[name] = consumer{kinds: ks, batch: h, every: every}
}

// Workers adds the bus's job workers to a River worker set: the batch
// worker every publication's jobs go to, and the one for ConsumeArgs jobs,
// which nothing enqueues any more but which a deployed database's queue may
// still hold (published before Publish went through PublishMany): they
// must still drain.
func (b *Bus) Workers(w *river.Workers) {
	river.AddWorker(w, &worker{bus: b})
	river.AddWorker(w, &batchWorker{bus: b})
}

// Attach gives the bus the River client it enqueues through.
func (b *Bus) Attach(c *river.Client[pgx.Tx]) { b.river = c }

// ConsumeArgs is the River job that delivers one event to one consumer.
// Publish enqueued one per event and consumer until it went through
// PublishMany; nothing enqueues it now, and its worker stays registered
// only so that jobs already queued in a deployed database still drain.
type ConsumeArgs struct {
	EventID  uuid.UUID `json:"event_id"`
	StoreID  uuid.UUID `json:"store_id"`
	Consumer string    `json:"consumer"`
}

// Kind implements river.JobArgs.
func (ConsumeArgs) Kind() string { return "domain_event" }

// ConsumeBatchArgs is the River job that delivers events of one store to
// one consumer, in one transaction.
type ConsumeBatchArgs struct {
	StoreID  uuid.UUID   `json:"store_id"`
	Consumer string      `json:"consumer"`
	EventIDs []uuid.UUID `json:"event_ids"`
}

// Kind implements river.JobArgs.
func (ConsumeBatchArgs) Kind() string { return "domain_events" }

// Publish records ev in tx and enqueues its consumers' jobs in the same
// transaction: if tx rolls back, the event never happened. It is
// PublishMany of one event, so that an event published alone reaches its
// consumers as any other does — a batch consumer in its batches of the
// store, under its pace — instead of bypassing them.
func (b *Bus) Publish(ctx context.Context, tx *postgres.Tx, ev Event) error {
	return b.PublishMany(ctx, tx, []Event{ev})
}

// PublishMany records evs in tx and enqueues their consumers' jobs in the
// same transaction (if tx rolls back, none of the events happened), setting
// the ID of each event whose ID is zero. It takes two round trips whatever
// their number: one insert of every domain_events row, one insert of one
// ConsumeBatchArgs job per consumer and store naming all the events it
// gets, each event once — for writers applying many changes in one
// transaction (carrier webhooks in batches), where a job per event and
// consumer cost more of a webhook batch's time than its own writes.
func (b *Bus) PublishMany(ctx context.Context, tx *postgres.Tx, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	n := len(evs)
	what := fmt.Sprintf("%d events", n) // for errors: an event published alone is named by its kind
	if n == 1 {
		what = string(evs[0].Kind)
	}
	var (
		ids      = make([]uuid.UUID, n)
		stores   = make([]uuid.UUID, n)
		kinds    = make([]string, n)
		aggTypes = make([]string, n)
		aggIDs   = make([]uuid.UUID, n)
		actors   = make([]*uuid.UUID, n)
		payloads = make([]string, n)
		batches  = map[batchKey][]uuid.UUID{}
		order    []batchKey
	)
	for i := range evs {
		ev := &evs[i]
		if ev.ID == uuid.Nil {
			ev.ID = uuid.Must(uuid.NewV7())
		}
		payloads[i] = "{}"
		if ev.Payload != nil {
			p, err := json.Marshal(ev.Payload)
			if err != nil {
				return fmt.Errorf("publish %s: marshal payload: %w", ev.Kind, err)
			}
			payloads[i] = string(p)
		}
		if ev.Actor != uuid.Nil {
			actors[i] = &ev.Actor
		}
		ids[i], stores[i], kinds[i], aggTypes[i], aggIDs[i] = ev.ID, ev.Store, string(ev.Kind), ev.AggregateType, ev.AggregateID
		for _, name := range b.consumersOf(ev.Kind) {
			k := batchKey{store: ev.Store, consumer: name}
			if _, ok := batches[k]; !ok {
				order = append(order, k)
			}
			batches[k] = append(batches[k], ev.ID)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO domain_events (id, store_id, kind, aggregate_type, aggregate_id, actor_user_id, payload)
SELECT id, store_id, kind, aggregate_type, aggregate_id, actor, payload::jsonb
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], $7::text[]) AS u(id, store_id, kind, aggregate_type, aggregate_id, actor, payload)`,
		ids, stores, kinds, aggTypes, aggIDs, actors, payloads); err != nil {
		return fmt.Errorf("publish %s: %w", what, err)
	}
	if len(order) == 0 {
		return nil
	}
	jobs := make([]river.InsertManyParams, len(order))
	for i, k := range order {
		jobs[i] = river.InsertManyParams{Args: ConsumeBatchArgs{StoreID: k.store, Consumer: k.consumer, EventIDs: batches[k]}}
	}
	if b.river == nil {
		return errors.New("publish: event bus has no River client attached")
	}
	if _, err := b.river.InsertManyTx(ctx, tx.Tx, jobs); err != nil {
		return fmt.Errorf("publish %s: enqueue consumers: %w", what, err)
	}
	return nil
}

// consumersOf lists, in a stable order, the consumers subscribed to kind.
func (b *Bus) consumersOf(kind Kind) []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var names []string
	for n, c := range b.consumers {
		if c.kinds[kind] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func (b *Bus) consumer(name string) (consumer, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	c, ok := b.consumers[name]
	return c, ok
}

// worker drains ConsumeArgs jobs enqueued before Publish went through
// PublishMany (see ConsumeArgs); nothing enqueues new ones.
type worker struct {
	river.WorkerDefaults[ConsumeArgs]
	bus *Bus
}

// Work delivers the event to its consumer at most once in effect, in a
// transaction of its own (a batch consumer gets it as a batch of one).
func (w *worker) Work(ctx context.Context, job *river.Job[ConsumeArgs]) error {
	a := job.Args
	c, ok := w.bus.consumer(a.Consumer)
	if !ok {
		return river.JobCancel(fmt.Errorf("no consumer named %q", a.Consumer))
	}
	return w.bus.consumeOne(ctx, c, a.StoreID, a.Consumer, a.EventID)
}
