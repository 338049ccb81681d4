package sendit

import (
	"testing"

	"github.com/leadify/leadify/syncserver/carrier"
)

// FuzzParseResponse feeds any body through every Sendit answer parser.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"success":true,"data":{"token":"abc"}}`,
		`{"success":false,"message":"Invalid credentials"}`,
		`{"success":true,"data":{"current_page":1,"last_page":3,"data":[{"id":1,"name":"Casablanca"}]}}`,
		`{"success":true,"data":[{"code":"SND1","reference":"L-1"}]}`,
		`{"success":true,"data":{"code":"SND1","status":"DELIVERED","last_action_at":"2026-03-15 13:17:11","history":[{"status":"PENDING","created_at":"2026-03-15 10:00:00"}]}}`,
		`{"success":true,"data":{"code":"SND1","status":"DELIVERED"}}`,
		`{"data":null}`,
	} {
		f.Add([]byte(s), 200)
	}
	f.Add([]byte(`{"message":"Unauthenticated."}`), 401)
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		data, err := parseEnvelope("op", carrier.Response{Status: status, Body: body})
		if err != nil {
			return
		}
		_, _, _ = parsePage(data)
		if tr, err := parseDelivery("X", data); err == nil {
			for _, ev := range tr.Events {
				if ev.Known != ev.Status.Valid() {
					t.Fatalf("event %+v: Known and Status disagree", ev)
				}
			}
		}
	})
}

func FuzzParseWebhook(f *testing.F) {
	f.Add("application/json", []byte(`{"code":"SND1","status":"DELIVERED","date":"2026-03-15 13:17:11","comment":""}`))
	f.Add("application/json", []byte(`{"data":{"code":"SND1","status":"RETURNED"}}`))
	f.Add("application/x-www-form-urlencoded", []byte(`code=SND1&status=REJECTED`))
	f.Add("", []byte(`{"code":1}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		ev, err := ParseWebhook(ct, body)
		if err != nil {
			return
		}
		if ev.Code == "" || ev.Raw == "" || ev.Known != ev.Status.Valid() {
			t.Fatalf("bad event %+v", ev)
		}
	})
}
