package syncsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/google/uuid"
)

// digest hashes the final state of a run: the report's counts, the server's
// leads, events, scopes and recorded mutations, and every replica's leads,
// events, conflicts and cursors. Ids the server makes up itself (users,
// store, claim events, rejections) are left out or named by who they are, so
// that two runs of one seed print the same digest.
func (s *Sim) digest(ctx context.Context) string {
	sum := sha256.New()
	var text bytes.Buffer
	h := io.MultiWriter(sum, &text)
	fmt.Fprintf(h, "seed %d steps %d quiet %d\n", s.report.Seed, s.report.Steps, s.report.QuietPoints)
	for _, m := range []map[string]int{s.report.Actions, s.report.Faults} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%s=%d\n", k, m[k])
		}
	}
	who := map[string]string{"": "-", s.store.String(): "store"}
	for _, c := range s.clients {
		who[c.user.String()] = c.name
	}
	name := func(id string) string {
		if n, ok := who[id]; ok {
			return n
		}
		return "other"
	}

	rows, err := s.owner.Query(ctx, `SELECT id::text, version, status, coalesce(assigned_to::text, ''), call_attempts,
  customer_name, address, deleted_at IS NOT NULL FROM leads WHERE store_id = $1 ORDER BY id`, s.store)
	if err != nil {
		s.t.Fatal(err)
	}
	for rows.Next() {
		var id, status, assigned, cname, address string
		var version int64
		var attempts int
		var deleted bool
		if err := rows.Scan(&id, &version, &status, &assigned, &attempts, &cname, &address, &deleted); err != nil {
			s.t.Fatal(err)
		}
		fmt.Fprintf(h, "lead %s v%d %s %s %d %q %q %t\n", id, version, status, name(assigned), attempts, cname, address, deleted)
	}
	rows.Close()
	rows, err = s.owner.Query(ctx, `SELECT lead_id::text, version, kind FROM lead_events WHERE store_id = $1 ORDER BY version`, s.store)
	if err != nil {
		s.t.Fatal(err)
	}
	for rows.Next() {
		var lead, kind string
		var version int64
		if err := rows.Scan(&lead, &version, &kind); err != nil {
			s.t.Fatal(err)
		}
		fmt.Fprintf(h, "event %s v%d %s\n", lead, version, kind)
	}
	rows.Close()
	for _, c := range s.clients {
		var seq, purged int64
		if err := s.owner.QueryRow(ctx, `SELECT seq, purged_below FROM sync_scopes WHERE scope_id = $1`, c.user).Scan(&seq, &purged); err == nil {
			fmt.Fprintf(h, "scope %s %d %d\n", c.name, seq, purged)
		}
		client, err := c.db.ClientID(ctx)
		if err != nil {
			s.t.Fatal(err)
		}
		rows, err := s.owner.Query(ctx, `SELECT mutation_id, applied FROM sync_mutations WHERE client_id = $1 ORDER BY mutation_id`, client)
		if err != nil {
			s.t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			var applied bool
			if err := rows.Scan(&id, &applied); err != nil {
				s.t.Fatal(err)
			}
			fmt.Fprintf(h, "mutation %s %d %t\n", c.name, id, applied)
		}
		rows.Close()
		s.digestReplica(h, c, name)
	}
	var seq, purged int64
	if err := s.owner.QueryRow(ctx, `SELECT seq, purged_below FROM sync_scopes WHERE scope_id = $1`, s.store).Scan(&seq, &purged); err != nil {
		s.t.Fatal(err)
	}
	fmt.Fprintf(h, "scope store %d %d\n", seq, purged)
	// The aside writers: which versions each took and how it ended (its
	// leads are above, or nowhere), and the reservations still recorded.
	for _, e := range s.asideEnded {
		fmt.Fprintf(h, "aside %d-%d steps %d-%d %s %d leads\n", e.first, e.last, e.opened, e.ended, e.how, len(e.ids))
	}
	for _, r := range s.reservations(ctx) {
		fmt.Fprintf(h, "reservation %d-%d %s\n", r.first, r.last, r.status)
	}
	digest := hex.EncodeToString(sum.Sum(nil))[:16]
	// To see where two runs part: diff the texts their digests were made of.
	if dir := os.Getenv("LEADIFY_SIM_DIGEST_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("sim-%d-%s.txt", s.report.Seed, digest)), text.Bytes(), 0o644); err != nil {
			s.t.Log(err)
		}
	}
	return digest
}

func (s *Sim) digestReplica(h io.Writer, c *client, name func(string) string) {
	for _, q := range []struct {
		query string
		cols  int
	}{
		{`SELECT id, version, status, assigned_to, call_attempts, customer_name, address, redacted FROM leads ORDER BY id`, 8},
		{`SELECT lead_id, version, kind, '', '', '', '', '' FROM lead_events ORDER BY version`, 3},
		{`SELECT mutation_id, code, '', '', '', '', '', '' FROM conflicts ORDER BY mutation_id`, 2},
		{`SELECT scope_id, version, '', '', '', '', '', '' FROM cursors ORDER BY version, scope_id`, 2},
	} {
		rows, err := c.read.Query(q.query)
		if err != nil {
			s.t.Fatal(err)
		}
		var lines []string
		for rows.Next() {
			v := make([]sql.NullString, 8)
			ptrs := make([]any, 8)
			for i := range v {
				ptrs[i] = &v[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				s.t.Fatal(err)
			}
			line := c.name + ":"
			for i := range q.cols {
				x := v[i].String
				if _, err := uuid.Parse(x); err == nil && name(x) != "other" {
					x = name(x) // a user or the store: named, not by id
				}
				line += fmt.Sprintf(" %q", x)
			}
			lines = append(lines, line)
		}
		rows.Close()
		sort.Strings(lines) // rows keyed by made-up ids are ordered by what they show
		for _, l := range lines {
			fmt.Fprintln(h, l)
		}
	}
}
