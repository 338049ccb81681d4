package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
)

// Every kind of value a Column holds reads back from PostgreSQL as written,
// NULLs included, through one binary array parameter per column.
func TestColumnsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	id := uuid.New()
	at := time.Date(2026, 3, 14, 9, 26, 53, 589793000, time.UTC)
	cols := map[string]*postgres.Column{
		"uuid": {Elem: postgres.OIDUUID}, "int8": {Elem: postgres.OIDInt8}, "int4": {Elem: postgres.OIDInt4},
		"text": {Elem: postgres.OIDText}, "jsonb": {Elem: postgres.OIDJSONB}, "timestamptz": {Elem: postgres.OIDTimestamptz},
	}
	cols["uuid"].UUID(id)
	cols["uuid"].NullUUID(uuid.Nil)
	cols["int8"].Int8(-1 << 62)
	cols["int8"].Int8(42)
	cols["int4"].Int4(-7)
	cols["int4"].Null()
	cols["text"].Text("الدار البيضاء · Casa")
	cols["text"].Text("")
	cols["jsonb"].JSONB([]byte(`{"qty": 2, "name": "Robe"}`))
	cols["jsonb"].JSONB([]byte(`[]`))
	cols["timestamptz"].Timestamptz(at)
	cols["timestamptz"].NullTimestamptz(time.Time{})
	var p postgres.Params
	for _, name := range []string{"uuid", "int8", "int4", "text", "jsonb", "timestamptz"} {
		require.Equal(t, 2, cols[name].Len(), name)
		p.Array(cols[name])
	}
	vals, oids, formats := p.Values()
	conn, err := db.App.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	res := conn.Conn().PgConn().ExecParams(ctx, `SELECT u::text, i8::text, i4::text, t, j::text, (ts AT TIME ZONE 'UTC')::text
FROM unnest($1::uuid[], $2::int8[], $3::int4[], $4::text[], $5::jsonb[], $6::timestamptz[]) AS x(u, i8, i4, t, j, ts)`,
		vals, oids, formats, nil).Read()
	require.NoError(t, res.Err)
	got := make([][]string, len(res.Rows))
	for i, row := range res.Rows {
		for _, v := range row {
			if v == nil {
				got[i] = append(got[i], "NULL")
				continue
			}
			got[i] = append(got[i], string(v))
		}
	}
	require.Equal(t, [][]string{
		{id.String(), "-4611686018427387904", "-7", "الدار البيضاء · Casa", `{"qty": 2, "name": "Robe"}`, "2026-03-14 09:26:53.589793"},
		{"NULL", "42", "NULL", "", "[]", "NULL"},
	}, got)
}
