package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/leadify/leadify/shared/commission"
)

// LoadRules returns the store's commission rules, sorted for evaluation.
// A stored rule that no longer decodes is an error naming it.
func LoadRules(ctx context.Context, tx pgx.Tx, store uuid.UUID) ([]commission.Rule, error) {
	rows, err := tx.Query(ctx, `SELECT id, rule FROM commission_rules WHERE store_id = $1`, store)
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	defer rows.Close()
	var rules []commission.Rule
	for rows.Next() {
		var id uuid.UUID
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, fmt.Errorf("load rules: %w", err)
		}
		r, err := commission.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("stored rule %v: %w", id, err)
		}
		rules = append(rules, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	commission.Sort(rules)
	return rules, nil
}

// SaveRule adds a rule to the store after checking it on its own and with
// the store's other rules (see commission.ValidateSet). A rule whose id
// exists replaces it only if nothing changes but its end date — history is
// never rewritten: to change a rule, close it and save a new one. Validation
// failures wrap commission.ErrInvalid.
func SaveRule(ctx context.Context, tx pgx.Tx, store, actor uuid.UUID, r commission.Rule) error {
	id, err := uuid.Parse(r.ID)
	if err != nil {
		return fmt.Errorf("%w: id: %q is not a uuid", commission.ErrInvalid, r.ID)
	}
	rules, err := LoadRules(ctx, tx, store)
	if err != nil {
		return err
	}
	set := []commission.Rule{r}
	for _, o := range rules {
		if o.ID != r.ID {
			set = append(set, o)
			continue
		}
		closed := o
		closed.ValidUntil = r.ValidUntil
		a, _ := json.Marshal(closed)
		b, _ := json.Marshal(r)
		if string(a) != string(b) {
			return fmt.Errorf("%w: rule %s exists: only its end date may change; close it and save a new rule", commission.ErrInvalid, r.ID)
		}
	}
	if err := commission.ValidateSet(set); err != nil {
		return err
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode rule: %w", err)
	}
	var actorID *uuid.UUID
	if actor != uuid.Nil {
		actorID = &actor
	}
	_, err = tx.Exec(ctx, `INSERT INTO commission_rules (store_id, id, rule, created_by) VALUES ($1, $2, $3, $4)
ON CONFLICT (store_id, id) DO UPDATE SET rule = excluded.rule`, store, id, raw, actorID)
	if err != nil {
		return fmt.Errorf("save rule: %w", err)
	}
	return nil
}

// ErrNoRules is returned by a preview of a store that has no rules.
var ErrNoRules = errors.New("the store has no commission rules")
