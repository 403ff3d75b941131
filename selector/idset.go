package selector

import (
	"math/bits"
	"slices"
)

// arrayMax is the idSet representation threshold: a sorted array up to
// arrayMax members, a bitmap beyond; back to an array below arrayMax/2
// members. A variable only so that tests can exercise both forms on small
// data; it must not change while an Index holds sets.
var arrayMax = 2048

// idSet is a set of dense object ids, sorted. Most label buckets and match
// sets hold a handful of objects: a sorted array (no hashing, one allocation,
// cheap membership tests by binary search). Large sets are bitmaps over the
// dense ids (1 bit per object of the index), so that testing membership in a
// crowded bucket costs one cache-resident bit test.
type idSet struct {
	arr  []uint32 // members, sorted; used when bits is nil
	bits []uint64 // bitmap, when large
	n    int      // members, when bits is not nil
}

func (s *idSet) len() int {
	if s.bits != nil {
		return s.n
	}
	return len(s.arr)
}

// add inserts x (no-op if present).
func (s *idSet) add(x uint32) {
	if s.bits != nil {
		w := int(x / 64)
		if w >= len(s.bits) {
			s.bits = append(s.bits, make([]uint64, w+1-len(s.bits))...)
		}
		if s.bits[w]&(1<<(x%64)) == 0 {
			s.bits[w] |= 1 << (x % 64)
			s.n++
		}
		return
	}
	if n := len(s.arr); n == 0 || s.arr[n-1] < x {
		s.arr = append(s.arr, x) // ids mostly arrive in increasing order
	} else {
		i, found := slices.BinarySearch(s.arr, x)
		if found {
			return
		}
		s.arr = slices.Insert(s.arr, i, x)
	}
	if len(s.arr) > arrayMax {
		max := s.arr[len(s.arr)-1]
		s.bits = make([]uint64, max/64+1)
		for _, y := range s.arr {
			s.bits[y/64] |= 1 << (y % 64)
		}
		s.n = len(s.arr)
		s.arr = nil
	}
}

// remove deletes x and reports whether it was present.
func (s *idSet) remove(x uint32) bool {
	if s.bits != nil {
		w := int(x / 64)
		if w >= len(s.bits) || s.bits[w]&(1<<(x%64)) == 0 {
			return false
		}
		s.bits[w] &^= 1 << (x % 64)
		s.n--
		if s.n < arrayMax/2 {
			arr := make([]uint32, 0, s.n+s.n/4)
			for y := range s.all {
				arr = append(arr, y)
			}
			s.arr, s.bits, s.n = arr, nil, 0
		}
		return true
	}
	i, found := slices.BinarySearch(s.arr, x)
	if !found {
		return false
	}
	s.arr = slices.Delete(s.arr, i, i+1)
	if len(s.arr) == 0 {
		s.arr = nil
	} else if cap(s.arr) > 64 && len(s.arr) < cap(s.arr)/4 {
		s.arr = slices.Clone(s.arr)
	}
	return true
}

func (s *idSet) has(x uint32) bool {
	if s.bits != nil {
		w := int(x / 64)
		return w < len(s.bits) && s.bits[w]&(1<<(x%64)) != 0
	}
	if len(s.arr) <= 8 {
		for _, y := range s.arr {
			if y == x {
				return true
			}
		}
		return false
	}
	_, found := slices.BinarySearch(s.arr, x)
	return found
}

// all yields every member in increasing order; the set must not change
// during the iteration.
func (s *idSet) all(yield func(uint32) bool) {
	if s.bits == nil {
		for _, x := range s.arr {
			if !yield(x) {
				return
			}
		}
		return
	}
	for w, word := range s.bits {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			if !yield(uint32(w*64 + b)) {
				return
			}
			word &= word - 1
		}
	}
}
