package syncer

// LeadsSQL is what a push reads (and locks) its leads with, for the plan
// test.
var LeadsSQL = leadsSQL

// RecordedSQL is what a push reads the recorded outcomes of resent
// mutations with, for the plan test.
const RecordedSQL = recordedSQL
