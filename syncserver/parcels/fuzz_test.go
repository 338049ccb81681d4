package parcels

import (
	"testing"
)

// FuzzParseDelivery feeds stored webhooks of every carrier through the
// server's parsing: any method, query, content type and body may be
// refused, never panic, and a parsed event has a code and a raw status.
func FuzzParseDelivery(f *testing.F) {
	f.Add("coliix", "GET", "", "code=4-CSA1&state=Livr%C3%A9+&datereported=2026-03-15+13%3A17+%3A11", []byte(nil))
	f.Add("coliix", "POST", "application/x-www-form-urlencoded", "", []byte("code=4-CSA1&state=Refus%C3%A9"))
	f.Add("ameex", "POST", "application/x-www-form-urlencoded", "", []byte("CODE=MRK1&STATUT=IN_PROGRESS&STATUT_S=NO_ANSWER"))
	f.Add("sendit", "POST", "application/json", "", []byte(`{"code":"SND1","status":"DELIVERED"}`))
	f.Add("sendit", "POST", "text/plain", "x=%zz", []byte("%%%"))
	f.Fuzz(func(t *testing.T, name, method, ct, query string, body []byte) {
		ev, err := parseDelivery(name, method, ct, query, body)
		if err != nil {
			return
		}
		if ev.Code == "" || ev.Raw == "" || ev.Known != ev.Status.Valid() {
			t.Fatalf("bad event %+v", ev)
		}
	})
}
