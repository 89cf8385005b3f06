package wire

import "github.com/fxamacker/cbor/v2"

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.EncOptions{Time: cbor.TimeRFC3339Nano, Sort: cbor.SortCoreDeterministic}.EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		MaxNestedLevels:   8,
		MaxArrayElements:  4096,
		MaxMapPairs:       64,
		IndefLength:       cbor.IndefLengthForbidden,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v with the protocol's canonical encoding. The store uses
// it too, so that records and frames share one codec.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes with the protocol's limits.
func Unmarshal(b []byte, v any) error { return decMode.Unmarshal(b, v) }
