package selector

// smallSetMax is the size up to which an idSet stays a plain slice.
const smallSetMax = 16

// idSet is a set of dense object ids. Most label buckets and many match sets
// hold a handful of objects: those stay an unsorted slice (no hashing, no map
// header); larger sets switch to a map and switch back when they shrink well
// below the threshold.
type idSet struct {
	small []uint32
	big   map[uint32]struct{}
}

func (s *idSet) len() int {
	if s.big != nil {
		return len(s.big)
	}
	return len(s.small)
}

// add inserts x, which the caller guarantees is absent.
func (s *idSet) add(x uint32) {
	if s.big != nil {
		s.big[x] = struct{}{}
		return
	}
	if len(s.small) < smallSetMax {
		s.small = append(s.small, x)
		return
	}
	s.big = make(map[uint32]struct{}, 2*smallSetMax)
	for _, y := range s.small {
		s.big[y] = struct{}{}
	}
	s.big[x] = struct{}{}
	s.small = nil
}

// remove deletes x and reports whether it was present.
func (s *idSet) remove(x uint32) bool {
	if s.big != nil {
		if _, ok := s.big[x]; !ok {
			return false
		}
		delete(s.big, x)
		if len(s.big) <= smallSetMax/4 {
			small := make([]uint32, 0, smallSetMax/2)
			for y := range s.big {
				small = append(small, y)
			}
			s.small, s.big = small, nil
		}
		return true
	}
	for i, y := range s.small {
		if y == x {
			last := len(s.small) - 1
			s.small[i] = s.small[last]
			s.small = s.small[:last]
			if last == 0 {
				s.small = nil
			}
			return true
		}
	}
	return false
}

// all yields every member; the set must not change during the iteration.
func (s *idSet) all(yield func(uint32) bool) {
	if s.big != nil {
		for x := range s.big {
			if !yield(x) {
				return
			}
		}
		return
	}
	for _, x := range s.small {
		if !yield(x) {
			return
		}
	}
}
