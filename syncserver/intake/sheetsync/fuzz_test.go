package sheetsync

import (
	"crypto/hmac"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseHookBody feeds arbitrary bodies to the sheet hook's parser: it
// never panics, and what it accepts has the fields the hook relies on and
// survives a JSON round trip; the signature check accepts only the exact
// body it signed.
func FuzzParseHookBody(f *testing.F) {
	f.Add([]byte(`{"connection":"0193a5b2-7c1d-7000-8000-000000000001","ts":1764000000,"nonce":"6f1c2b7e-1111-4a3b-9c2d-000000000000","event":"edit"}`))
	f.Add([]byte(`{"connection":"x","ts":-1,"nonce":"short"}`))
	f.Add([]byte(`{"connection":"x","ts":1e99,"nonce":"12345678"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"connection":"x","ts":1,"nonce":"12345678","event":"` + strings.Repeat("é", 30) + `"}`))
	f.Add([]byte("\x00\xff{"))
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := ParseHookBody(body)
		if err == nil {
			if h.Connection == "" || h.TS <= 0 || len(h.Nonce) < 8 || len(h.Nonce) > 100 || len(h.Event) > 40 {
				t.Fatalf("accepted %q as %+v", body, h)
			}
			again, _ := json.Marshal(h)
			if h2, err := ParseHookBody(again); err != nil || h2 != h {
				t.Fatalf("round trip of %+v: %+v, %v", h, h2, err)
			}
		}
		sig := Sign("secret", body)
		if !hmac.Equal([]byte(sig), []byte(Sign("secret", body))) {
			t.Fatal("signature is not deterministic")
		}
		if hmac.Equal([]byte(sig), []byte(Sign("secret", append(body, 0)))) || hmac.Equal([]byte(sig), []byte(Sign("secreT", body))) {
			t.Fatal("another body or secret has the same signature")
		}
	})
}
