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
	"github.com/jackc/pgx/v5/pgxpool"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/shared/mutation"
	"github.com/leadify/leadify/syncserver/carrier/coliix"
	"github.com/leadify/leadify/syncserver/carrier/coliix/coliixtest"
	"github.com/leadify/leadify/syncserver/parcels"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
)

// cleanups collects what the carrier fakes close when the demo ends.
type cleanups []func()

func (c *cleanups) Cleanup(f func()) { *c = append(*c, f) }

// RunCarriers plays the carrier side of the demo against a running server:
// it starts a Coliix sandbox (the same fake the tests use, moving parcels
// through realistic lifecycles and calling the server's webhook), connects it
// to the SampleStore as its carrier account, has the demo agent claim and
// confirm leads — which the server turns into parcels on its own — and prints
// every parcel status change until all have reached an end or ctx ends. The
// carrier moves every parcel one step each step.
func RunCarriers(ctx context.Context, pool *pgxpool.Pool, kr *secrets.Keyring, serverURL string, leads int, step time.Duration, out io.Writer) error {
	var closers cleanups
	defer func() {
		for _, f := range closers {
			f()
		}
	}()
	fake := coliixtest.NewServer(&closers, coliixtest.Options{Seed: uint64(time.Now().UnixNano()), DeliveryRate: 0.7, CancelRate: 0.05})

	var store uuid.UUID
	var token string
	account := uuid.Must(uuid.NewV7())
	err := postgres.InTx(ctx, pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT id FROM stores WHERE name = $1 AND deleted_at IS NULL ORDER BY created_at LIMIT 1`,
			SampleStore).Scan(&store); err != nil {
			return fmt.Errorf("find the demo store (run seed-demo first): %w", postgres.Translate(err))
		}
		// The sandbox listens on a new address each run: retire the last one.
		if _, err := tx.Exec(ctx, `UPDATE carrier_accounts SET deleted_at = now() WHERE store_id = $1 AND label = 'Coliix sandbox' AND deleted_at IS NULL`, store); err != nil {
			return err
		}
		var err error
		_, token, err = parcels.InsertAccount(ctx, tx, kr, parcels.NewAccount{ID: account, Store: store, Carrier: coliix.Name,
			Label: "Coliix sandbox", Credentials: parcels.Credentials{BaseURL: fake.URL, Token: "test-token"}})
		return err
	})
	if err != nil {
		return fmt.Errorf("connect the Coliix sandbox: %w", err)
	}
	fake.SetWebhookURL(parcels.WebhookURL(serverURL, coliix.Name, account, token))
	fmt.Fprintf(out, "Coliix sandbox at %s is %s's carrier; webhooks go to the server\n", fake.URL, SampleStore)

	confirmed, err := confirmAsAgent(ctx, serverURL, store, leads)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s (agent) claimed and confirmed %d leads; the server creates their parcels\n", agents[0].name, len(confirmed))
	go fake.Sim.Run(ctx, step)
	return watchParcels(ctx, pool, store, confirmed, out)
}

// confirmAsAgent signs in as the first demo agent and confirms up to n leads
// of the store through the sync protocol, as the desktop app does.
func confirmAsAgent(ctx context.Context, serverURL string, store uuid.UUID, n int) ([]uuid.UUID, error) {
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
	sync := leadifyv1connect.NewSyncServiceClient(httpc, serverURL, bearer)
	client := uuid.NewString()
	hs, err := sync.Handshake(ctx, connect.NewRequest(&leadifyv1.HandshakeRequest{ClientId: client,
		SchemaVersion: 1, MutationSetHash: mutation.SetHash(), DeviceName: "demo"}))
	if err != nil {
		return nil, err
	}
	claimed, err := sync.ClaimLeads(ctx, connect.NewRequest(&leadifyv1.ClaimLeadsRequest{StoreId: store.String(), Count: int32(n)}))
	if err != nil {
		return nil, err
	}
	push := &leadifyv1.PushRequest{ClientId: client}
	next := hs.Msg.NextMutationId
	for _, id := range claimed.Msg.LeadIds {
		name, version, args, err := mutation.Encode(mutation.ConfirmLead{Lead: uuid.MustParse(id), EventID: uuid.New()})
		if err != nil {
			return nil, err
		}
		push.Mutations = append(push.Mutations, &leadifyv1.Mutation{MutationId: next, StoreId: store.String(), Name: name,
			Version: int32(version), Args: args})
		next++
	}
	resp, err := sync.Push(ctx, connect.NewRequest(push))
	if err != nil {
		return nil, err
	}
	var confirmed []uuid.UUID
	for i, r := range resp.Msg.Results {
		if r.Applied {
			confirmed = append(confirmed, uuid.MustParse(claimed.Msg.LeadIds[i]))
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
		type row struct{ id, tracking, status, creation, city, errMsg string }
		var rows []row
		err := postgres.InTx(ctx, pool, postgres.StoreScope(store), func(tx *postgres.Tx) error {
			r, err := tx.Query(ctx, `SELECT p.id::text, p.tracking, p.status, p.creation, l.city_raw, p.error FROM parcels p
JOIN leads l ON l.store_id = p.store_id AND l.id = p.lead_id
WHERE p.store_id = $1 AND p.lead_id = ANY($2) AND p.deleted_at IS NULL`, store, leads)
			if err != nil {
				return err
			}
			defer r.Close()
			for r.Next() {
				var x row
				if err := r.Scan(&x.id, &x.tracking, &x.status, &x.creation, &x.city, &x.errMsg); err != nil {
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
		for _, x := range rows {
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
				fmt.Fprintf(out, "  parcel %-22s %-14s %s → %s\n", x.tracking, x.city, from, state)
				seen[x.id] = state
			}
			// A parcel ends delivered, returned, cancelled or lost at the
			// carrier — or never gets there: creation failed or held for review.
			if final[x.status] || x.creation == "failed" || x.creation == "review" {
				done++
			}
		}
		if want > 0 && done >= want {
			fmt.Fprintf(out, "all %d parcels reached an end\n", done)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
