package dupscope

// Matcher finds copies of known values inside byte strings (message
// payloads, batches), with the piece-wise matching Analyse uses for
// Options.Known. It is not safe for concurrent use.
type Matcher struct{ s *scanner }

// NewMatcher indexes values; none may be empty.
func NewMatcher(values [][]byte) (*Matcher, error) {
	s, err := newScanner(values)
	if err != nil {
		return nil, err
	}
	return &Matcher{s: s}, nil
}

// Copies calls fn for each copy of a value found in data, with the value's
// index and the offset where the copy starts, ordered by value then offset.
func (m *Matcher) Copies(data []byte, fn func(value, off int)) { m.s.copies(data, fn) }
