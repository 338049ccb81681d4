package intake

// Outcome is what became of a row.
type Outcome string

// The outcomes.
const (
	OutcomeImported  Outcome = "imported"
	OutcomeUpdated   Outcome = "updated"
	OutcomeUnchanged Outcome = "unchanged"
	OutcomeDuplicate Outcome = "duplicate"
	OutcomeRejected  Outcome = "rejected"
	OutcomeEmpty     Outcome = "empty"
)

// RowResult is one row of a report.
type RowResult struct {
	Num     int
	Key     string
	Outcome Outcome
	Reason  Reason
	Detail  string
	LeadID  string // the lead written or matched; for a duplicate, the new lead (DuplicateOf names the original)
	// DuplicateOf is the lead a duplicate repeats.
	DuplicateOf string
}

// Counts tallies a run's outcomes.
type Counts struct {
	Imported, Updated, Unchanged, Duplicate, Rejected, Empty int
}

// Add counts one outcome.
func (c *Counts) Add(o Outcome) {
	switch o {
	case OutcomeImported:
		c.Imported++
	case OutcomeUpdated:
		c.Updated++
	case OutcomeUnchanged:
		c.Unchanged++
	case OutcomeDuplicate:
		c.Duplicate++
	case OutcomeRejected:
		c.Rejected++
	case OutcomeEmpty:
		c.Empty++
	}
}

// Rows is how many rows were counted.
func (c Counts) Rows() int {
	return c.Imported + c.Updated + c.Unchanged + c.Duplicate + c.Rejected + c.Empty
}

// Report is the outcome of a run.
type Report struct {
	RunID      string
	Counts     Counts
	HasOrderID bool // rows were keyed by an order-id column, not by hash
	// Rows holds every row's result when the run was asked to keep them
	// (bounded file uploads); sheet syncs keep only the notable ones in the
	// database.
	Rows []RowResult
}
