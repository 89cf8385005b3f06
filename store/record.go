package store

import (
	"errors"

	"github.com/fxamacker/cbor/v2"
)

// The store's own record codec. Records (headers, delivery states,
// receipts) are CBOR with integer keys and a canonical encoding, the same
// family as the protocol's frames but deliberately a separate codec: the
// disk format must not change, nor refuse to read, because the protocol's
// decoder changed its limits. A record's bytes are fixed by golden files
// (testdata/records.golden).
var (
	recEnc cbor.EncMode
	recDec cbor.DecMode
)

func init() {
	var err error
	recEnc, err = cbor.EncOptions{Time: cbor.TimeRFC3339Nano, Sort: cbor.SortCoreDeterministic}.EncMode()
	if err != nil {
		panic(err)
	}
	// A record was written by this switch and authenticated when it was
	// unsealed, so the limits guard only against a bug: generous enough
	// for any record the switch writes (a header lists at most a few
	// thousand addressees), tight enough that a damaged record cannot make
	// the decoder allocate without bound.
	recDec, err = cbor.DecOptions{
		MaxNestedLevels:  8,
		MaxArrayElements: 1 << 16,
		MaxMapPairs:      64,
		IndefLength:      cbor.IndefLengthForbidden,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		// An older switch refuses a record with a field it does not know
		// rather than act on part of it (a deferred telegram read by a
		// switch that knows no deferral would be delivered early).
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// encodeRecord encodes a record for the disk.
func encodeRecord(v any) ([]byte, error) { return recEnc.Marshal(v) }

// decodeRecord decodes a record read from the disk.
func decodeRecord(b []byte, v any) error { return recDec.Unmarshal(b, v) }

// padRecord pads an encoded record with zeros to its size class (a power
// of two from 256 bytes, as body chunks: file.go), so that its sealed
// length says little of what it holds.
func padRecord(b []byte) []byte { return append(b, make([]byte, sizeClass(len(b))-len(b))...) }

// decodePadded decodes a record stored padded (or exact: records written
// before padding). Anything after the record must be zeros.
func decodePadded(b []byte, v any) error {
	rest, err := recDec.UnmarshalFirst(b, v)
	if err != nil {
		return err
	}
	for _, c := range rest {
		if c != 0 {
			return errors.New("record followed by data that is not padding")
		}
	}
	return nil
}
