package intake

// OpenLeadsSQL is what a run reads which of its changed rows' leads are
// open with, for the plan test.
const OpenLeadsSQL = openLeadsSQL
