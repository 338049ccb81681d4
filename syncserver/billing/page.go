package billing

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"maps"
	"net/http"
	"slices"

	"github.com/leadify/leadify/shared/invoiceseal"
)

var verifyPage = template.Must(template.New("verify").Parse(`<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vérification de facture — Leadify</title>
<style>
body{font-family:system-ui,sans-serif;background:#f3f4f6;color:#1f2937;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
.card{background:#fff;border-radius:12px;box-shadow:0 4px 24px #0001;padding:32px 40px;max-width:440px}
.ok{color:#047857}.ko{color:#b91c1c}h1{font-size:1.4em;margin:0 0 12px}dt{color:#6b7280;font-size:.85em;margin-top:10px}dd{margin:2px 0 0;font-weight:600}
.ar{direction:rtl;color:#6b7280}
</style></head><body><div class="card">
{{if .Valid}}<h1 class="ok">✔ Facture authentique</h1><p class="ar">فاتورة أصلية</p>
<dl><dt>Facture n°</dt><dd>{{.Number}}</dd><dt>Boutique</dt><dd>{{.StoreName}}</dd>
<dt>Net à reverser</dt><dd>{{.Net.Format}}</dd><dt>Émise le</dt><dd>{{.IssuedAt.Format "02/01/2006"}}</dd></dl>
{{else}}<h1 class="ko">✘ Facture non vérifiée</h1><p class="ar">تعذر التحقق من الفاتورة</p><p>{{.Reason}}</p>{{end}}
</div></body></html>`))

// VerifyHandler serves the public verification page the QR codes link to
// (GET VerifyPath), and at invoiceseal.KeysPath the server's invoice public
// keys as an invoiceseal.KeyList, which desktops cache to check invoice
// seals offline. A malformed link is a 400, a link that does not verify a
// page saying why (200: the check itself succeeded).
func (s *Service) VerifyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has(KeysQuery) {
			s.serveKeys(w, r)
			return
		}
		v, err := s.Verify(r.Context(), "?"+r.URL.RawQuery)
		if errors.Is(err, ErrMalformedLink) {
			w.WriteHeader(http.StatusBadRequest)
			v = Verification{Reason: "lien de vérification illisible"}
		} else if err != nil {
			http.Error(w, "vérification impossible pour le moment", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = verifyPage.Execute(w, v)
	})
}

// KeysQuery is the query parameter of VerifyPath that asks for the public
// keys: VerifyPath + "?" + KeysQuery is invoiceseal.KeysPath.
const KeysQuery = "keys"

// PublicKeys returns every invoice-signing public key (the active one is
// created on first use).
func (s *Service) PublicKeys(ctx context.Context) (PublicKeys, error) {
	if _, err := s.Signer(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(PublicKeys, len(s.keys))
	maps.Copy(out, s.keys)
	return out, nil
}

func (s *Service) serveKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.PublicKeys(r.Context())
	if err != nil {
		http.Error(w, "keys unavailable", http.StatusServiceUnavailable)
		return
	}
	var resp invoiceseal.KeyList
	for _, id := range slices.Sorted(maps.Keys(keys)) {
		resp.Keys = append(resp.Keys, invoiceseal.PublicKey{ID: id, PublicKey: keys[id]})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(resp)
}
