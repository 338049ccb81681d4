package e2e

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"strconv"
	"testing"

	"connectrpc.com/connect"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/servertest"
)

// startServer starts the real sync server on its own Postgres database for the
// life of the test, with a seller owning three branded stores, and returns its
// base URL and the seller's credentials.
func startServer(t *testing.T) (url, email, password string) {
	t.Helper()
	ctx := context.Background()
	env := servertest.Start(t)
	tn := env.NewTenant(env.Admin(), "atlas")
	stores := []struct{ name, primary, accent string }{
		{"Atlas Shop", "#0f766e", "#f97316"},
		{"Casa Deals", "#7c3aed", "#fde047"},
		{"Souk Express", "#b91c1c", "#1e293b"},
	}
	for i, st := range stores {
		b := &leadifyv1.Branding{PrimaryColor: st.primary, AccentColor: st.accent}
		if i == 0 {
			b.Logo = logo(t, st.accent)
			_, err := tn.Seller.Accounts.UpdateStore(ctx, connect.NewRequest(&leadifyv1.UpdateStoreRequest{StoreId: tn.StoreID.String(),
				UpdateMask: []string{"name", "branding"}, Settings: &leadifyv1.StoreSettings{Name: st.name, Branding: b}}))
			if err != nil {
				t.Fatalf("brand %s: %v", st.name, err)
			}
			continue
		}
		_, err := tn.Seller.Accounts.CreateStore(ctx, connect.NewRequest(&leadifyv1.CreateStoreRequest{SellerId: tn.SellerID.String(),
			Settings: &leadifyv1.StoreSettings{Name: st.name, Branding: b}}))
		if err != nil {
			t.Fatalf("create %s: %v", st.name, err)
		}
	}
	return env.URL, tn.SellerEmail, servertest.Password
}

// logo draws a small PNG: a disc of colour hex ("#rrggbb") on white.
func logo(t *testing.T, hex string) []byte {
	t.Helper()
	rgb, err := strconv.ParseUint(hex[1:], 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	disc := color.RGBA{R: uint8(rgb >> 16), G: uint8(rgb >> 8), B: uint8(rgb), A: 255}
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, color.White)
			if dx, dy := x-32, y-32; dx*dx+dy*dy <= 24*24 {
				img.Set(x, y, disc)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
