package wire

import "time"

// AuditArchiveRequest asks the switch to move the audit entries older
// than an age out of its store into archive files now (it also does so
// by itself, hourly, past its configured age).
type AuditArchiveRequest struct {
	// OlderThan is the age; nil: the switch's configured age.
	OlderThan *time.Duration `cbor:"1,keyasint,omitempty"`
}

// AuditArchived answers AuditArchiveRequest.
type AuditArchived struct {
	Files   []string `cbor:"1,keyasint" json:"files"`          // archive files written now
	Entries uint64   `cbor:"2,keyasint" json:"entries"`        // entries moved out of the store now
	Below   uint64   `cbor:"3,keyasint" json:"archived_below"` // every entry below this index is archived
	Dir     string   `cbor:"4,keyasint" json:"dir"`            // the switch's archive folder
}
