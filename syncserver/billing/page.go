package billing

import (
	"errors"
	"html/template"
	"net/http"
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
// (GET VerifyPath). A malformed link is a 400, a link that does not verify a
// page saying why (200: the check itself succeeded).
func (s *Service) VerifyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
