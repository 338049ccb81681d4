package demo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadify/leadify/syncserver/intake/shop/shopify/shopifytest"
	"github.com/leadify/leadify/syncserver/intake/shop/shopsync"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/secrets"
)

// ShopStore is the demo store connected to the fake Shopify shop.
const ShopStore = "Caftan Chic"

const (
	demoShopSecret = "shpss_demo_caftan_chic"
	demoShopToken  = "shpat_demo_caftan_chic"
	demoShopName   = "Shopify sandbox"
)

type demoOrder struct {
	first, last, phone, city, address string
	title, sku                        string
	qty                               int32
	price                             string
	cod, viaWebhook                   bool
}

var demoOrders = []demoOrder{
	{"Salma", "Bennani", "0612345678", "Casablanca", "Bd Zerktouni 12", "Caftan brodé bleu nuit", "CAF-BLEU-M", 1, "890.00", true, true},
	{"Youssef", "El Fassi", "06 61 22 33 44", "Fès", "Derb Lamrabet 3", "Jabador homme sable", "JAB-SABLE-L", 1, "450.00", true, true},
	{"Fatima", "Zahra Tazi", "+212698765432", "Marrakech", "Rue Yougoslavie 8", "Takchita mariage ivoire", "TAK-IVOIRE-S", 1, "2400.00", true, true},
	{"Karim", "Alaoui", "0700112233", "Tanger", "Av. Mohammed VI 40", "Djellaba laine grise", "DJE-GRIS-XL", 2, "380.00", true, true},
	{"Nadia", "Berrada", "0655443322", "Rabat", "Agdal, rue Oum Errabia 5", "Caftan velours bordeaux", "CAF-BORD-M", 1, "990.00", false, true},
	{"Hicham", "Ouazzani", "0677889900", "Agadir", "Hay Dakhla 21", "Gandoura lin blanc", "GAN-BLANC-M", 1, "320.00", true, false},
}

// RunShops plays a shop's side of the demo against a running server: it
// starts a fake Shopify shop (the one the tests use), connects it to
// ShopStore (cash-on-delivery orders only), and sends its orders as signed
// webhooks — one paid by card, which the COD policy skips, and one later
// cancelled — which the server turns into leads; then it backfills the
// shop's recent orders (the one order never announced by webhook arrives,
// the others keep their leads), reads its products and stock, prints what
// became of every order and keeps the fake shop up until ctx ends.
func RunShops(ctx context.Context, pool *pgxpool.Pool, kr *secrets.Keyring, serverURL string, out io.Writer) error {
	fake := shopifytest.New(shopifytest.Options{Secret: []byte(demoShopSecret), AccessToken: demoShopToken, Domain: "caftan-chic.myshopify.com"})
	defer fake.Close()
	svc := shopsync.New(pool, kr, nil, nil, nil)
	defer svc.Inbox.Close()

	var conn shopsync.Connection
	err := postgres.InTx(ctx, pool, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		var store uuid.UUID
		if err := tx.QueryRow(ctx, `SELECT id FROM stores WHERE name = $1 AND deleted_at IS NULL ORDER BY created_at LIMIT 1`,
			ShopStore).Scan(&store); err != nil {
			return fmt.Errorf("find the demo store (run seed-demo first): %w", postgres.Translate(err))
		}
		// The sandbox listens on a new address each run: retire the last one.
		if _, err := tx.Exec(ctx, `UPDATE shop_connections SET deleted_at = now() WHERE store_id = $1 AND name = $2 AND deleted_at IS NULL`,
			store, demoShopName); err != nil {
			return err
		}
		var err error
		conn, err = shopsync.InsertConnection(ctx, tx, kr, shopsync.NewConnection{Store: store, Platform: "shopify", Name: demoShopName,
			BaseURL: fake.URL, Credentials: shopsync.Credentials{AccessToken: demoShopToken, WebhookSecret: demoShopSecret}, CODOnly: true, BackfillDays: 7})
		return err
	})
	if err != nil {
		return err
	}
	hook := serverURL + shopsync.WebhookPath("shopify", conn.ID)
	for _, topic := range []string{"orders/create", "orders/updated", "orders/cancelled"} {
		fake.Subscribe(topic, hook)
	}
	fmt.Fprintf(out, "Shopify sandbox at %s is connected to %s (COD orders only); webhooks go to %s\n", fake.URL, ShopStore, hook)

	for i, p := range []struct {
		sku, title string
		stock      int32
	}{{"CAF-BLEU-M", "Caftan brodé bleu nuit", 12}, {"JAB-SABLE-L", "Jabador homme sable", 30}, {"TAK-IVOIRE-S", "Takchita mariage ivoire", 3},
		{"DJE-GRIS-XL", "Djellaba laine grise", 18}, {"CAF-BORD-M", "Caftan velours bordeaux", 7}, {"GAN-BLANC-M", "Gandoura lin blanc", 25}} {
		fake.AddVariant(shopifytest.Variant{ID: int64(9000 + i), ProductID: int64(800 + i), Product: p.title, Title: "Default Title", SKU: p.sku,
			Price: "0.00", Inventory: p.stock})
	}
	ids := make([]int64, len(demoOrders))
	now := time.Now().UTC()
	for i, o := range demoOrders {
		gw, fin := []string{"Cash on Delivery (COD)"}, "pending"
		if !o.cod {
			gw, fin = []string{"shopify_payments"}, "paid"
		}
		phone := o.phone
		ids[i] = fake.AddOrder(shopifytest.Order{Phone: &phone, Email: "", CreatedAt: now.Add(time.Duration(i-len(demoOrders)) * time.Minute).Format(time.RFC3339),
			TotalPrice: o.price, FinancialStatus: fin, Gateways: gw, Note: "Commande du site",
			ShippingAddress: &shopifytest.Address{FirstName: o.first, LastName: o.last, Name: o.first + " " + o.last, Address1: o.address, City: o.city, CountryCode: "MA"},
			LineItems:       []shopifytest.LineItem{{ID: int64(i + 1), Title: o.title, SKU: o.sku, Quantity: o.qty, Price: o.price}}})
	}
	for i, o := range demoOrders {
		if !o.viaWebhook {
			continue
		}
		event, err := fake.Fire(ctx, "orders/create", ids[i])
		if err != nil {
			return fmt.Errorf("send order webhook: %w", err)
		}
		fmt.Fprintf(out, "webhook orders/create %s (event %s) for %s %s, %s MAD\n", fmt.Sprint(ids[i]), event, o.first, o.last, o.price)
	}
	// The customer of the second order moved; the fourth cancelled.
	fake.UpdateOrder(ids[1], func(o *shopifytest.Order) { o.ShippingAddress.Address1 = "Bd Allal El Fassi 77" })
	if _, err := fake.Fire(ctx, "orders/updated", ids[1]); err != nil {
		return err
	}
	fake.UpdateOrder(ids[3], func(o *shopifytest.Order) { c := now.Format(time.RFC3339); o.CancelledAt = &c })
	if _, err := fake.Fire(ctx, "orders/cancelled", ids[3]); err != nil {
		return err
	}
	fmt.Fprintln(out, "webhook orders/updated (new address) and orders/cancelled sent")

	// The server's jobs process the stored webhooks.
	deadline := time.Now().Add(time.Minute)
	for {
		var pending int
		if err := postgres.InTx(ctx, pool, postgres.StoreScope(conn.StoreID), func(tx *postgres.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM shop_webhooks WHERE store_id = $1 AND connection_id = $2 AND status = 'pending'`,
				conn.StoreID, conn.ID).Scan(&pending)
		}); err != nil {
			return err
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d shop webhooks still pending after a minute (is the server working jobs?)", pending)
		}
		time.Sleep(200 * time.Millisecond)
	}
	res, err := svc.Backfill(ctx, conn.StoreID, conn.ID, 7)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "backfill of the last 7 days (GraphQL Admin API): %d imported, %d unchanged, %d skipped (not COD)\n",
		res.Imported, res.Unchanged, res.SkippedNotCOD)
	n, err := svc.SyncProducts(ctx, conn.StoreID, conn.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d products and their stock read from the shop\n\n", n)

	fmt.Fprintf(out, "%-8s %-22s %-12s %-10s %-18s %s\n", "order", "customer", "city", "total", "outcome", "lead")
	err = postgres.InTx(ctx, pool, postgres.StoreScope(conn.StoreID), func(tx *postgres.Tx) error {
		rows, err := tx.Query(ctx, `SELECT o.ref, coalesce(l.customer_name, ''), coalesce(l.city_raw, ''), coalesce(l.cod, 0), o.outcome,
  coalesce(l.status, '—'), o.source FROM shop_orders o LEFT JOIN leads l ON l.store_id = o.store_id AND l.id = o.lead_id
WHERE o.store_id = $1 AND o.connection_id = $2 ORDER BY o.ref`, conn.StoreID, conn.ID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ref, name, cityRaw, outcome, status, source string
			var cod int64
			if err := rows.Scan(&ref, &name, &cityRaw, &cod, &outcome, &status, &source); err != nil {
				return err
			}
			if outcome == "skipped_not_cod" {
				name = "(paid by card)"
			}
			fmt.Fprintf(out, "%-8s %-22s %-12s %7d.%02d %-18s %s (arrived by %s)\n", ref, name, cityRaw, cod/100, cod%100, outcome, status, source)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nshop sandbox ready: it stays up (backfills and connection tests reach it) until stopped")
	<-ctx.Done()
	return nil
}
