package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/carrier/ameex"
	"github.com/leadify/leadify/syncserver/carrier/ameex/ameextest"
	"github.com/leadify/leadify/syncserver/carrier/coliix"
	"github.com/leadify/leadify/syncserver/carrier/coliix/coliixtest"
	"github.com/leadify/leadify/syncserver/carrier/sendit"
	"github.com/leadify/leadify/syncserver/carrier/sendit/sendittest"
	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
)

// cleanups collects what the carrier fakes close when the demo ends.
type cleanups []func()

func (c *cleanups) Cleanup(f func()) { *c = append(*c, f) }

// sandbox is one fake carrier connected to the demo store.
type sandbox struct {
	name    string // carrier name
	label   string
	url     string
	creds   parcels.Credentials
	setHook func(string)
	run     func(context.Context, time.Duration)
	account uuid.UUID
}

// RunCarriers plays the carrier side of the demo against a running server:
// it starts Coliix, Ameex and Sendit sandboxes (the fakes the tests use,
// moving parcels through realistic lifecycles and calling the server's
// webhooks), connects them to the SampleStore as its carrier accounts with
// their demo price lists (so the store's invoices carry carrier fees) —
// Coliix the default, the cities of the leads about to be confirmed shared
// out between the three by per-city rules — has the demo agent claim and
// confirm leads, which the server turns into parcels on its own, and prints
// every parcel status change until all have reached an end or ctx ends,
// then how each carrier's parcels ended. The carriers move every parcel one
// step each step.
func RunCarriers(ctx context.Context, pool *pgxpool.Pool, kr *secrets.Keyring, serverURL string, leads int, step time.Duration, out io.Writer) error {
	var closers cleanups
	defer func() {
		for _, f := range closers {
			f()
		}
	}()
	seed := uint64(time.Now().UnixNano())
	cx := coliixtest.NewServer(&closers, coliixtest.Options{Seed: seed, DeliveryRate: 0.6, CancelRate: 0.05})
	am := ameextest.NewServer(&closers, ameextest.Options{Seed: seed + 1, DeliveryRate: 0.6, CancelRate: 0.05})
	se := sendittest.NewServer(&closers, sendittest.Options{Seed: seed + 2, DeliveryRate: 0.6, CancelRate: 0.05})
	boxes := []*sandbox{
		{name: coliix.Name, label: "Coliix sandbox", url: cx.URL, creds: parcels.Credentials{BaseURL: cx.Endpoint, Token: "test-token"}, setHook: cx.SetWebhookURL, run: cx.Sim.Run},
		{name: ameex.Name, label: "Ameex sandbox", url: am.URL, creds: parcels.Credentials{BaseURL: am.URL, APIID: "test-id", APIKey: "test-key"}, setHook: am.SetWebhookURL, run: am.Sim.Run},
		{name: sendit.Name, label: "Sendit sandbox", url: se.URL, creds: parcels.Credentials{BaseURL: se.BaseURL, PublicKey: "test-public", SecretKey: "test-secret"}, setHook: se.SetWebhookURL, run: se.Sim.Run},
	}

	var store uuid.UUID
	tokens := map[string]string{}
	err := postgres.InTx(ctx, pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT id FROM stores WHERE name = $1 AND deleted_at IS NULL ORDER BY created_at LIMIT 1`,
			SampleStore).Scan(&store); err != nil {
			return fmt.Errorf("find the demo store (run seed-demo first): %w", postgres.Translate(err))
		}
		// The sandboxes listen on new addresses each run: retire the last ones.
		if _, err := tx.Exec(ctx, `DELETE FROM carrier_city_rules WHERE store_id = $1`, store); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE carrier_accounts SET deleted_at = now() WHERE store_id = $1 AND label LIKE '% sandbox' AND deleted_at IS NULL`, store); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE stores SET default_carrier = $2 WHERE id = $1`, store, coliix.Name); err != nil {
			return err
		}
		for _, b := range boxes {
			b.account = uuid.Must(uuid.NewV7())
			_, token, err := parcels.InsertAccount(ctx, tx, kr, parcels.NewAccount{ID: b.account, Store: store, Carrier: b.name,
				Label: b.label, Credentials: b.creds})
			if err != nil {
				return err
			}
			tokens[b.name] = token
			// What the sandbox charges, so that the store's invoices carry
			// carrier fees: its tariffs from a year back, open-ended.
			if err := saveDemoPriceLists(ctx, tx, store, b.name, b.account, time.Now().AddDate(-1, 0, 0)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("connect the carrier sandboxes: %w", err)
	}
	for _, b := range boxes {
		b.setHook(parcels.WebhookURL(serverURL, b.name, b.account, tokens[b.name]))
		fmt.Fprintf(out, "%s at %s is a carrier account of %s; webhooks go to the server\n", b.label, b.url, SampleStore)
	}

	agent, err := signInAgent(ctx, serverURL)
	if err != nil {
		return err
	}
	claimed, err := agent.claim(ctx, store, leads)
	if err != nil {
		return err
	}
	if err := shareCities(ctx, pool, store, claimed, boxes, out); err != nil {
		return err
	}
	confirmed, err := agent.confirm(ctx, store, claimed)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s (agent) claimed and confirmed %d leads; the server creates their parcels\n", agents[0].name, len(confirmed))
	for _, b := range boxes {
		go b.run(ctx, step)
	}
	return watchParcels(ctx, pool, store, confirmed, out)
}

// shareCities sets the store's per-city carrier rules so that the claimed
// leads' cities are shared out between the sandboxes, the city with the
// most leads going to the carrier with the fewest so far.
func shareCities(ctx context.Context, pool *pgxpool.Pool, store uuid.UUID, leads []uuid.UUID, boxes []*sandbox, out io.Writer) error {
	return postgres.InTx(ctx, pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT city_id, count(*) FROM leads WHERE store_id = $1 AND id = ANY($2) AND city_id <> ''
GROUP BY city_id ORDER BY count(*) DESC, city_id`, store, leads)
		if err != nil {
			return err
		}
		type cityCount struct {
			city string
			n    int
		}
		cities, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cityCount, error) {
			var c cityCount
			return c, r.Scan(&c.city, &c.n)
		})
		if err != nil {
			return err
		}
		load := make([]int, len(boxes))
		for _, c := range cities {
			least := 0
			for i := range load {
				if load[i] < load[least] {
					least = i
				}
			}
			load[least] += c.n
			if _, err := tx.Exec(ctx, `INSERT INTO carrier_city_rules (store_id, city_id, account_id) VALUES ($1, $2, $3)
ON CONFLICT (store_id, city_id) DO UPDATE SET account_id = EXCLUDED.account_id`, store, c.city, boxes[least].account); err != nil {
				return err
			}
			fmt.Fprintf(out, "  rule: leads in %-14s → %s\n", c.city, boxes[least].name)
		}
		return nil
	})
}

// demoAgent is the first demo agent signed in, speaking the sync protocol
// as the desktop app does.
type demoAgent struct {
	sync   leadifyv1connect.SyncServiceClient
	client string
	next   int64
}

func signInAgent(ctx context.Context, serverURL string) (*demoAgent, error) {
	httpc := &http.Client{Timeout: 30 * time.Second}
	login, err := leadifyv1connect.NewAuthServiceClient(httpc, serverURL).Login(ctx,
		connect.NewRequest(&leadifyv1.LoginRequest{Email: agents[0].email, Password: DefaultPassword, DeviceName: "demo"}))
	if err != nil {
		return nil, fmt.Errorf("sign in as %s: %w", agents[0].email, err)
	}
	bearer := connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+login.Msg.Token)
			return next(ctx, req)
		}
	}))
	a := &demoAgent{sync: leadifyv1connect.NewSyncServiceClient(httpc, serverURL, bearer), client: uuid.NewString()}
	hs, err := a.sync.Handshake(ctx, connect.NewRequest(&leadifyv1.HandshakeRequest{ClientId: a.client,
		SchemaVersion: 1, MutationSetHash: mutation.SetHash(), DeviceName: "demo"}))
	if err != nil {
		return nil, err
	}
	a.next = hs.Msg.NextMutationId
	return a, nil
}

// claim leases up to n pool leads of the store to the agent.
func (a *demoAgent) claim(ctx context.Context, store uuid.UUID, n int) ([]uuid.UUID, error) {
	claimed, err := a.sync.ClaimLeads(ctx, connect.NewRequest(&leadifyv1.ClaimLeadsRequest{StoreId: store.String(), Count: int32(n)}))
	if err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(claimed.Msg.LeadIds))
	for i, id := range claimed.Msg.LeadIds {
		ids[i] = uuid.MustParse(id)
	}
	return ids, nil
}

// confirm pushes a ConfirmLead mutation per lead and returns those applied.
func (a *demoAgent) confirm(ctx context.Context, store uuid.UUID, leads []uuid.UUID) ([]uuid.UUID, error) {
	push := &leadifyv1.PushRequest{ClientId: a.client}
	for _, id := range leads {
		name, version, args, err := mutation.Encode(mutation.ConfirmLead{Lead: id, EventID: uuid.New()})
		if err != nil {
			return nil, err
		}
		push.Mutations = append(push.Mutations, &leadifyv1.Mutation{MutationId: a.next, StoreId: store.String(), Name: name,
			Version: int32(version), Args: args})
		a.next++
	}
	resp, err := a.sync.Push(ctx, connect.NewRequest(push))
	if err != nil {
		return nil, err
	}
	var confirmed []uuid.UUID
	for i, r := range resp.Msg.Results {
		if r.Applied {
			confirmed = append(confirmed, leads[i])
		}
	}
	return confirmed, nil
}

// watchParcels prints the status changes of the leads' parcels until every
// one has reached an end (or ctx ends).
func watchParcels(ctx context.Context, pool *pgxpool.Pool, store uuid.UUID, leads []uuid.UUID, out io.Writer) error {
	want := len(leads)
	final := map[string]bool{"delivered": true, "returned": true, "cancelled": true, "lost": true}
	seen := map[string]string{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		type row struct{ id, carrier, tracking, status, creation, city, errMsg string }
		var rows []row
		err := postgres.InTx(ctx, pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
			r, err := tx.Query(ctx, `SELECT p.id::text, p.carrier, p.tracking, p.status, p.creation, l.city_raw, p.error FROM parcels p
JOIN leads l ON l.store_id = p.store_id AND l.id = p.lead_id
WHERE p.store_id = $1 AND p.lead_id = ANY($2) AND p.deleted_at IS NULL`, store, leads)
			if err != nil {
				return err
			}
			defer r.Close()
			for r.Next() {
				var x row
				if err := r.Scan(&x.id, &x.carrier, &x.tracking, &x.status, &x.creation, &x.city, &x.errMsg); err != nil {
					return err
				}
				rows = append(rows, x)
			}
			return r.Err()
		})
		if err != nil {
			return err
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].tracking < rows[j].tracking })
		done := 0
		ends := map[string]map[string]int{}
		totals := map[string]int{}
		for _, x := range rows {
			totals[x.carrier]++
			state := x.status
			if x.creation != "created" {
				state = x.creation // calling, review or failed
				if x.errMsg != "" {
					state += " (" + x.errMsg + ")"
				}
			}
			if prev, ok := seen[x.id]; !ok || prev != state {
				from := prev
				if from == "" {
					from = "—"
				}
				fmt.Fprintf(out, "  parcel %-6s %-22s %-14s %s → %s\n", x.carrier, x.tracking, x.city, from, state)
				seen[x.id] = state
			}
			// A parcel ends delivered, returned, cancelled or lost at the
			// carrier — or never gets there: creation failed or held for review.
			if final[x.status] || x.creation == "failed" || x.creation == "review" {
				done++
				end := x.status
				if x.creation != "created" {
					end = x.creation
				}
				if ends[x.carrier] == nil {
					ends[x.carrier] = map[string]int{}
				}
				ends[x.carrier][end]++
			}
		}
		if want > 0 && done >= want {
			fmt.Fprintf(out, "all %d parcels reached an end\n", done)
			for _, name := range []string{coliix.Name, ameex.Name, sendit.Name} {
				fmt.Fprintf(out, "  %-6s delivered %d, returned %d, cancelled %d, other %d\n", name, ends[name]["delivered"], ends[name]["returned"],
					ends[name]["cancelled"], totals[name]-ends[name]["delivered"]-ends[name]["returned"]-ends[name]["cancelled"])
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
