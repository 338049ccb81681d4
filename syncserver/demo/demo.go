// Package demo seeds the sandbox that `go tool task demo` runs: a platform
// admin, two sellers with branded stores, and call-centre agents, all with the
// same demo password. Seeding is idempotent: a second run changes nothing.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/leadify/leadify/syncserver/audit"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/events"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/queries"
	"github.com/leadify/leadify/syncserver/server"
)

// DefaultPassword is every demo user's password.
const DefaultPassword = "leadify-demo-2026"

// Login is one demo account.
type Login struct {
	Role, Email, Name, Stores string
}

type storeSpec struct {
	name, primary, accent, carrier string
}

type sellerSpec struct {
	name, email, owner string
	stores             []storeSpec
}

var sellers = []sellerSpec{
	{"Argan Beauty", "salma@arganbeauty.ma", "Salma Bennani", []storeSpec{
		{"Argan Beauty", "#9a3412", "#f59e0b", "coliix"},
		{"Caftan Chic", "#7c3aed", "#f472b6", "ameex"},
	}},
	{"TechSouk", "youssef@techsouk.ma", "Youssef El Fassi", []storeSpec{
		{"TechSouk", "#0369a1", "#22d3ee", "ameex"},
	}},
}

var agents = []struct {
	email, name string
	stores      []string
}{
	{"sara@callcentre.ma", "Sara Alaoui", []string{"Argan Beauty", "Caftan Chic"}},
	{"karim@callcentre.ma", "Karim Tazi", []string{"TechSouk", "Argan Beauty"}},
}

const adminEmail = "admin@leadify.ma"

// Seed creates the demo accounts unless they exist and returns the logins.
func Seed(ctx context.Context, s *server.Server, password string) ([]Login, error) {
	hash, err := auth.HashPassword(password)
	if err != nil {
		return nil, err
	}
	err = postgres.InTx(ctx, s.Pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		_, err := tx.Q.GetUserByEmail(ctx, tx, adminEmail)
		if err == nil {
			return errAlreadySeeded
		}
		admin, err := tx.Q.CreateUser(ctx, tx, queries.CreateUserParams{ID: uuid.Must(uuid.NewV7()), Email: adminEmail,
			FullName: "Leadify Admin", PasswordHash: hash, PlatformAdmin: true})
		if err != nil {
			return err
		}
		storeIDs := map[string]uuid.UUID{}
		for _, sp := range sellers {
			owner, err := tx.Q.CreateUser(ctx, tx, queries.CreateUserParams{ID: uuid.Must(uuid.NewV7()), Email: sp.email,
				FullName: sp.owner, PasswordHash: hash})
			if err != nil {
				return err
			}
			seller, err := tx.Q.CreateSeller(ctx, tx, queries.CreateSellerParams{ID: uuid.Must(uuid.NewV7()), Name: sp.name, OwnerUserID: owner.ID})
			if err != nil {
				return err
			}
			for _, st := range sp.stores {
				store, err := tx.Q.CreateStore(ctx, tx, queries.CreateStoreParams{ID: uuid.Must(uuid.NewV7()), SellerID: seller.ID,
					Name: st.name, PrimaryColor: st.primary, AccentColor: st.accent, DefaultCarrier: st.carrier,
					AutoCreateParcels: true, LeadLeaseMinutes: 24 * 60,
					Invoice:  []byte(fmt.Sprintf(`{"legalName":%q,"vatRateBp":2000,"vatApplicable":true}`, sp.name+" SARL")),
					Currency: "MAD", Timezone: "Africa/Casablanca"})
				if err != nil {
					return err
				}
				storeIDs[st.name] = store.ID
				if _, err := tx.Q.UpsertMember(ctx, tx, queries.UpsertMemberParams{StoreID: store.ID, UserID: owner.ID, Role: string(auth.RoleSeller)}); err != nil {
					return err
				}
				if err := s.Events.Publish(ctx, tx, events.Event{Store: store.ID, Kind: events.StoreCreated, AggregateType: "store",
					AggregateID: store.ID, Actor: admin.ID}); err != nil {
					return err
				}
				if err := audit.Write(ctx, tx, audit.Entry{Actor: admin.ID, Store: store.ID, Action: "store.created",
					TargetType: "store", TargetID: store.ID.String(), Summary: map[string]any{"name": st.name, "demo": true}}); err != nil {
					return err
				}
			}
		}
		for _, ag := range agents {
			u, err := tx.Q.CreateUser(ctx, tx, queries.CreateUserParams{ID: uuid.Must(uuid.NewV7()), Email: ag.email,
				FullName: ag.name, PasswordHash: hash})
			if err != nil {
				return err
			}
			for _, st := range ag.stores {
				if _, err := tx.Q.UpsertMember(ctx, tx, queries.UpsertMemberParams{StoreID: storeIDs[st], UserID: u.ID, Role: string(auth.RoleAgent)}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errAlreadySeeded) {
		return nil, err
	}
	return Logins(), nil
}

var errAlreadySeeded = errors.New("already seeded")

// Logins lists the demo accounts without touching the database.
func Logins() []Login {
	out := []Login{{Role: "admin", Email: adminEmail, Name: "Leadify Admin", Stores: "all"}}
	for _, sp := range sellers {
		var names []string
		for _, st := range sp.stores {
			names = append(names, st.name)
		}
		out = append(out, Login{Role: "seller", Email: sp.email, Name: sp.owner, Stores: strings.Join(names, ", ")})
	}
	for _, ag := range agents {
		out = append(out, Login{Role: "agent", Email: ag.email, Name: ag.name, Stores: strings.Join(ag.stores, ", ")})
	}
	return out
}

// PrintLogins writes the logins as a table.
func PrintLogins(w io.Writer, logins []Login) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ROLE\tEMAIL\tNAME\tSTORES\n")
	for _, l := range logins {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Role, l.Email, l.Name, l.Stores)
	}
	fmt.Fprintf(tw, "password for every demo account: %s\n", DefaultPassword)
	_ = tw.Flush()
}
