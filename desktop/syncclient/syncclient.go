// Package syncclient keeps a desktop replica (desktop/localstore) in step with
// the Leadify server (DESIGN.md, "Sync protocol"): it hand-shakes once per
// connection, pushes the outbox in order, pulls every scope until nothing is
// left and applies each page with the replica's rebase, and, in Run, does so
// whenever Subscribe pokes, a local write is queued or a retry is due, backing
// off with jitter while the server is unreachable. Claims are online calls.
package syncclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"github.com/leadify/leadify/desktop/localstore"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/shared/mutation"
)

// SchemaVersion is the sync schema this client speaks (the server's
// syncer.SchemaVersion of the same build).
const SchemaVersion = 1

// Config says which server to sync with, as whom, into which replica.
type Config struct {
	BaseURL string
	Token   string
	DB      *localstore.DB
	// HTTP is the client for calls and the Subscribe stream; a plain HTTP/1.1
	// client when nil (Connect streams work over it).
	HTTP *http.Client
	// DeviceName labels the client on the server.
	DeviceName string
	// PageRows bounds each pull page (the server caps it); 0 lets the server choose.
	PageRows int32
	// PushBatch bounds each push; 500 when zero.
	PushBatch int
	// PokesOnly asks the Subscribe stream for pokes only, every change then
	// pulled (how clients synced before delivery; kept for comparisons).
	PokesOnly bool
	// Hook, when set, is called at named points ("push:before-send",
	// "push:after-reply", "pull:before-apply") for crash tests.
	Hook func(point string)
	Log  *slog.Logger
}

// Status is how the replica stands with the server, for the UI.
type Status struct {
	Online    bool
	Pending   int
	Conflicts int
	LastSync  time.Time
	// Detail says why the last sync failed, "" after a success.
	Detail string
}

// Client syncs one replica. It is safe for concurrent use; syncs are
// serialized.
type Client struct {
	cfg  Config
	rpc  leadifyv1connect.SyncServiceClient
	auth leadifyv1connect.AuthServiceClient
	acct leadifyv1connect.AccountsServiceClient
	kick chan struct{}

	syncMu       sync.Mutex // one sync at a time
	mu           sync.Mutex
	shaken       bool
	lastRecorded time.Time
	online       bool
	detail       string
}

// New returns a client for cfg; it does not contact the server.
func New(cfg Config) (*Client, error) {
	if cfg.DB == nil || cfg.BaseURL == "" {
		return nil, errors.New("syncclient: a replica and a server address are required")
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{}
	}
	if cfg.PushBatch <= 0 {
		cfg.PushBatch = 500
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	opts := connect.WithInterceptors(bearer(cfg.Token))
	return &Client{cfg: cfg, kick: make(chan struct{}, 1),
		rpc:  leadifyv1connect.NewSyncServiceClient(cfg.HTTP, base, opts),
		auth: leadifyv1connect.NewAuthServiceClient(cfg.HTTP, base, opts),
		acct: leadifyv1connect.NewAccountsServiceClient(cfg.HTTP, base, opts)}, nil
}

func (c *Client) at(point string) {
	if c.cfg.Hook != nil {
		c.cfg.Hook(point)
	}
}

// Do applies m locally and queues it (localstore.DB.Do), then wakes Run. It
// works offline; it returns the mutation id, or the local rejection.
func (c *Client) Do(ctx context.Context, store uuid.UUID, m mutation.Mutation) (int64, error) {
	id, err := c.cfg.DB.Do(ctx, store, m)
	if err == nil {
		c.Kick()
	}
	return id, err
}

// Kick asks Run to sync soon.
func (c *Client) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Handshake registers the replica's client id, keeps the local mutation ids
// ahead of what the server has recorded, and refreshes the memberships local
// mutations apply with (Me, and the stores' lease lengths).
func (c *Client) Handshake(ctx context.Context) error {
	db := c.cfg.DB
	client, err := db.ClientID(ctx)
	if err != nil {
		return err
	}
	hs, err := c.rpc.Handshake(ctx, connect.NewRequest(&leadifyv1.HandshakeRequest{ClientId: client.String(),
		SchemaVersion: SchemaVersion, MutationSetHash: mutation.SetHash(), DeviceName: c.cfg.DeviceName}))
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if err := db.EnsureNextMutationID(ctx, hs.Msg.NextMutationId); err != nil {
		return err
	}
	me, err := c.auth.Me(ctx, connect.NewRequest(&leadifyv1.MeRequest{}))
	if err != nil {
		return fmt.Errorf("read memberships: %w", err)
	}
	lease := map[string]int32{}
	if st, err := c.acct.ListStores(ctx, connect.NewRequest(&leadifyv1.ListStoresRequest{})); err == nil {
		for _, s := range st.Msg.Stores {
			lease[s.Id] = s.GetSettings().GetLeadLeaseMinutes()
		}
	}
	user, err := uuid.Parse(me.Msg.GetUser().GetId())
	if err != nil {
		return fmt.Errorf("read memberships: bad user id: %w", err)
	}
	var ms []localstore.Membership
	for _, m := range me.Msg.Memberships {
		store, err := uuid.Parse(m.StoreId)
		if err != nil {
			continue
		}
		role := strings.ToLower(strings.TrimPrefix(m.Role.String(), "ROLE_"))
		if me.Msg.GetUser().GetPlatformAdmin() {
			role = string(mutation.RoleAdmin)
		}
		ms = append(ms, localstore.Membership{StoreID: store, Role: mutation.Role(role), Permissions: m.Permissions,
			LeaseMinutes: lease[m.StoreId]})
	}
	if err := db.SetIdentity(ctx, user, me.Msg.GetUser().GetFullName(), ms); err != nil {
		return err
	}
	c.mu.Lock()
	c.shaken = true
	c.mu.Unlock()
	return nil
}

// Push sends the outbox in mutation-id order, in batches, and records each
// outcome on its entry. A gap the server reports is resent from where it
// says; an id it wants that the outbox no longer holds is an error.
func (c *Client) Push(ctx context.Context) error {
	db := c.cfg.DB
	client, err := db.ClientID(ctx)
	if err != nil {
		return err
	}
	gen, maybe := db.MaybeUnsent()
	if !maybe {
		return nil // nothing queued since the last push found the outbox sent
	}
	from, unsentOnly := int64(0), true
	for range 10_000 {
		batch, err := db.Outbox(ctx, from, unsentOnly, c.cfg.PushBatch)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			if unsentOnly {
				db.MarkSent(gen)
			}
			return nil
		}
		req := &leadifyv1.PushRequest{ClientId: client.String()}
		for _, e := range batch {
			req.Mutations = append(req.Mutations, &leadifyv1.Mutation{MutationId: e.MutationID, StoreId: e.StoreID,
				Name: e.Name, Version: e.Version, Args: e.Args})
		}
		c.at("push:before-send")
		resp, err := c.rpc.Push(ctx, connect.NewRequest(req))
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		c.at("push:after-reply")
		if err := db.RecordResults(ctx, resp.Msg.Results); err != nil {
			return err
		}
		if rf := resp.Msg.ResendFrom; rf != 0 {
			if rf < batch[0].MutationID {
				return fmt.Errorf("push: the server wants mutations from %d, which this replica no longer holds", rf)
			}
			from, unsentOnly = rf, false
			continue
		}
		from, unsentOnly = batch[len(batch)-1].MutationID+1, true
	}
	return errors.New("push: no progress")
}

// applyRows is how many pulled rows Pull gathers before applying them in one
// transaction: one commit (fsync) per ~20,000 rows rather than per page,
// with the pages' memory bounded.
const applyRows = 20_000

// Pull pulls pages until no scope has more, applying them (with the
// replica's rebase) in transactions of about applyRows rows. Each page is
// pulled from the cursors the previous one ends at, so the next pages are
// fetched while the last ones are applied. Pages pulled before a failure are
// still applied.
func (c *Client) Pull(ctx context.Context) error {
	db := c.cfg.DB
	client, err := db.ClientID(ctx)
	if err != nil {
		return err
	}
	saved, err := db.Cursors(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan *leadifyv1.PullResponse, 4)
	var pullErr error // written before pages is closed
	go func() {
		defer close(pages)
		pullErr = c.fetch(ctx, client, saved, pages)
	}()
	var batch []*leadifyv1.PullResponse
	rows := 0
	for p := range pages {
		batch = append(batch, p)
		for _, sc := range p.Scopes {
			rows += len(sc.Changes)
		}
		if rows >= applyRows {
			if err := c.apply(ctx, batch); err != nil {
				cancel()
				for range pages { // let the fetcher end
				}
				return err
			}
			batch, rows = nil, 0
		}
	}
	if unchanged(batch, saved) && !db.ResultsAwaitApply() {
		// A poke that brought nothing, with no push result recorded since the
		// last apply (one whose version the cursor already passed is decided
		// only by an apply): no transaction, no commit.
		batch = nil
	}
	return errors.Join(pullErr, c.apply(ctx, batch))
}

// unchanged reports whether pages carry nothing to write: no rows, no scope
// dropped or re-synced, every cursor where it was.
func unchanged(pages []*leadifyv1.PullResponse, saved []*leadifyv1.Cursor) bool {
	at := make(map[string]*leadifyv1.Cursor, len(saved))
	for _, c := range saved {
		at[c.ScopeId] = c
	}
	for _, p := range pages {
		if len(p.RemovedScopes) > 0 {
			return false
		}
		for _, sc := range p.Scopes {
			c := at[sc.ScopeId]
			if len(sc.Changes) > 0 || sc.ResyncRequired || c == nil || c.Version != sc.Cursor || c.Epoch != sc.Epoch ||
				c.Initial != sc.Initial || c.InitialPurged != sc.InitialPurged {
				return false
			}
		}
	}
	return true
}

// fetch pulls pages from cursors on until no scope has more, sending each to
// out.
func (c *Client) fetch(ctx context.Context, client uuid.UUID, saved []*leadifyv1.Cursor, out chan<- *leadifyv1.PullResponse) error {
	cursors := map[string]*leadifyv1.Cursor{}
	for _, cur := range saved {
		cursors[cur.ScopeId] = cur
	}
	for {
		req := &leadifyv1.PullRequest{ClientId: client.String(), MaxRows: c.cfg.PageRows}
		for _, cur := range cursors {
			req.Cursors = append(req.Cursors, cur)
		}
		resp, err := c.rpc.Pull(ctx, connect.NewRequest(req))
		if err != nil {
			return fmt.Errorf("pull: %w", err)
		}
		for _, id := range resp.Msg.RemovedScopes {
			delete(cursors, id)
		}
		more := false
		for _, sc := range resp.Msg.Scopes {
			cursors[sc.ScopeId] = &leadifyv1.Cursor{ScopeId: sc.ScopeId, Version: sc.Cursor, Epoch: sc.Epoch,
				Initial: sc.Initial, InitialPurged: sc.InitialPurged}
			more = more || sc.HasMore
		}
		select {
		case out <- resp.Msg:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !more {
			return nil
		}
	}
}

// apply applies pulled pages in one transaction.
func (c *Client) apply(ctx context.Context, pages []*leadifyv1.PullResponse) error {
	if len(pages) == 0 {
		return nil
	}
	c.at("pull:before-apply")
	if err := c.cfg.DB.ApplyPages(ctx, pages...); err != nil {
		return fmt.Errorf("apply pulled pages: %w", err)
	}
	return nil
}

// ApplyDelivered applies changes the Subscribe stream delivered when they
// continue the replica (localstore.DB.ApplyDelivered), between syncs. It
// reports whether the replica must pull instead.
func (c *Client) ApplyDelivered(ctx context.Context, d *leadifyv1.DeliveredChanges) (pull bool, err error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.at("deliver:before-apply")
	pull, err = c.cfg.DB.ApplyDelivered(ctx, d.GetFrom(), d.GetChanges())
	if err != nil {
		return true, fmt.Errorf("apply delivered changes: %w", err)
	}
	return pull, nil
}

// Sync hand-shakes (once per client, or after a failure), pushes, then pulls,
// and records the time it caught up. Its outcome is reflected in Status.
func (c *Client) Sync(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	err := c.sync(ctx)
	c.mu.Lock()
	c.online, c.detail = err == nil, ""
	if err != nil {
		c.shaken = false
		c.detail = err.Error()
	}
	c.mu.Unlock()
	return err
}

func (c *Client) sync(ctx context.Context) error {
	c.mu.Lock()
	shaken := c.shaken
	c.mu.Unlock()
	if !shaken {
		if err := c.Handshake(ctx); err != nil {
			return err
		}
	}
	if err := c.Push(ctx); err != nil {
		return err
	}
	if err := c.Pull(ctx); err != nil {
		return err
	}
	// The time of the last sync is for the status pill: recording it at most
	// every few seconds spares a durable commit on every poke.
	now := time.Now()
	c.mu.Lock()
	stale := now.Sub(c.lastRecorded) >= lastSyncGrain
	if stale {
		c.lastRecorded = now
	}
	c.mu.Unlock()
	if !stale {
		return nil
	}
	return c.cfg.DB.SetLastSync(ctx, now)
}

// lastSyncGrain is how often a successful sync's time is written down.
const lastSyncGrain = 5 * time.Second

// Claim leases up to n leads of store from the pool (online only), then pulls
// them in. It returns the claimed lead ids.
func (c *Client) Claim(ctx context.Context, store uuid.UUID, n int32) ([]string, error) {
	resp, err := c.rpc.ClaimLeads(ctx, connect.NewRequest(&leadifyv1.ClaimLeadsRequest{StoreId: store.String(), Count: n}))
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	if err := c.Sync(ctx); err != nil {
		return resp.Msg.LeadIds, err
	}
	return resp.Msg.LeadIds, nil
}

// Status reports the replica's pending and conflict counts, its last sync and
// whether the last sync reached the server.
func (c *Client) Status(ctx context.Context) (Status, error) {
	st, err := c.cfg.DB.SyncState(ctx)
	if err != nil {
		return Status{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Online: c.online, Pending: st.Pending, Conflicts: st.Conflicts, LastSync: st.LastSync, Detail: c.detail}, nil
}

// Backoff bounds of Run's retries.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
	// resync is how often Run syncs without a poke, in case one was lost.
	resync = time.Minute
)

// Run syncs until ctx ends: at once, then whenever the Subscribe stream
// pokes, Do queues a mutation or a minute passes. While the server is
// unreachable it retries with exponential backoff and full jitter. It
// returns ctx's error.
func (c *Client) Run(ctx context.Context) error {
	go c.subscribe(ctx)
	backoff := minBackoff
	for {
		wait := resync
		if err := c.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.cfg.Log.Warn("sync failed", "err", err, "retry_in", backoff)
			wait = jitter(backoff)
			backoff = min(backoff*2, maxBackoff)
		} else {
			backoff = minBackoff
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-c.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// subscribe keeps a Subscribe stream open, asking for changes to be
// delivered in it. It applies each delivery that continues the replica's
// cursor and kicks Run on every poke and every delivery it cannot apply (the
// first message of each stream included: a reconnect always pulls).
func (c *Client) subscribe(ctx context.Context) {
	backoff := minBackoff
	for ctx.Err() == nil {
		client, err := c.cfg.DB.ClientID(ctx)
		var cursors []*leadifyv1.Cursor
		if err == nil {
			cursors, err = c.cfg.DB.Cursors(ctx)
		}
		if err == nil {
			var stream *connect.ServerStreamForClient[leadifyv1.SubscribeResponse]
			stream, err = c.rpc.Subscribe(ctx, connect.NewRequest(&leadifyv1.SubscribeRequest{ClientId: client.String(),
				Deliver: !c.cfg.PokesOnly, Cursors: cursors}))
			if err == nil {
				for stream.Receive() {
					backoff = minBackoff
					if d := stream.Msg().Delivered; d != nil {
						pull, err := c.ApplyDelivered(ctx, d)
						if err != nil {
							c.cfg.Log.Warn("apply delivered changes", "err", err)
						}
						if !pull {
							continue
						}
					}
					c.Kick()
				}
				err = stream.Err()
				_ = stream.Close()
			}
		}
		if ctx.Err() != nil {
			return
		}
		c.cfg.Log.Debug("subscribe ended", "err", err)
		t := time.NewTimer(jitter(backoff))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		backoff = min(backoff*2, maxBackoff)
	}
}

type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if b != "" {
			req.Header().Set("Authorization", "Bearer "+string(b))
		}
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if b != "" {
			conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		}
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
