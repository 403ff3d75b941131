package nftables

import (
	"net/netip"
	"slices"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// tx collects the changes of one Sync or Apply and orders them into one
// batch so that no reference dangles at any message:
//
//	0 table            5 new sets, new chains, new limits
//	1 map entries out  6 set elements out
//	2 chains flushed   7 set elements in
//	3 chains deleted   8 rules written
//	4 sets deleted     9 map entries in
//	                  10 limits deleted (no rule uses them any more)
//
// A nil *tx discards everything (used to build a model without a kernel).
type tx struct {
	table      string
	family     byte // unix.NFPROTO_INET, or NFPROTO_BRIDGE for br
	addTable   bool
	delTable   bool // bridge table: delete it, nothing else
	br         *tx  // the bridge table's changes (source validation), after ours
	newSets    map[string]*setModel
	delSets    map[string]bool
	flushSets  map[string]*setModel
	newChains  map[string]*chainModel
	delChains  map[string]int // name → rules it held
	writes     map[string]*chainWrite
	elems      map[string]*elemOps
	setCounter uint32
	newLimits  map[string]uint32
	delLimits  map[string]bool
}

type chainWrite struct {
	c     *chainModel
	flush bool
	old   int
}

type elemOps struct {
	set          *setModel
	addIv, delIv []interval
	addH, delH   []netip.Addr
	addPt, delPt []netip.AddrPort
	addJump      []jumpEntry
	delJump      []netip.Addr
	addIf, delIf []string
	addPr, delPr []ifAddr
}

type jumpEntry struct {
	addr  netip.Addr
	chain string
}

func newTx(table string) *tx {
	return &tx{
		table:     table,
		family:    unix.NFPROTO_INET,
		newSets:   map[string]*setModel{},
		delSets:   map[string]bool{},
		flushSets: map[string]*setModel{},
		newChains: map[string]*chainModel{},
		delChains: map[string]int{},
		writes:    map[string]*chainWrite{},
		elems:     map[string]*elemOps{},
		newLimits: map[string]uint32{},
		delLimits: map[string]bool{},
	}
}

func (t *tx) createLimit(name string, rate uint32) {
	if t != nil {
		t.newLimits[name] = rate
	}
}

func (t *tx) deleteLimit(name string) {
	if t != nil {
		t.delLimits[name] = true
	}
}

// bridge returns the changes of our bridge table, committed in the same
// batch after the inet table's. nil for a nil t.
func (t *tx) bridge() *tx {
	if t == nil {
		return nil
	}
	if t.br == nil {
		t.br = newTx(t.table)
		t.br.family = unix.NFPROTO_BRIDGE
	}
	return t.br
}

// deleteTable deletes the (bridge) table, dropping every other change of
// t.
func (t *tx) deleteTable() {
	if t != nil {
		*t = tx{table: t.table, family: t.family, delTable: true}
	}
}

func (t *tx) createTable() {
	if t != nil {
		t.addTable = true
	}
}

func (t *tx) createSet(s *setModel) {
	if t != nil {
		t.newSets[s.name] = s
	}
}

func (t *tx) deleteSet(name string) {
	if t != nil {
		t.delSets[name] = true
		delete(t.elems, name)
	}
}

func (t *tx) flushSet(s *setModel) {
	if t != nil {
		t.flushSets[s.name] = s
	}
}

func (t *tx) createChain(c *chainModel) {
	if t != nil {
		t.newChains[c.name] = c
	}
}

// deleteChain flushes and deletes a chain that held old rules.
func (t *tx) deleteChain(name string, old int) {
	if t == nil {
		return
	}
	if _, ok := t.newChains[name]; ok {
		delete(t.newChains, name) // created and dropped within this batch
		delete(t.writes, name)
		return
	}
	t.delChains[name] = old
	delete(t.writes, name)
}

// writeRules sets a chain's rules: flush (when the chain held old rules)
// then add c's rules in order.
func (t *tx) writeRules(c *chainModel, flush bool, old int) {
	if t == nil {
		return
	}
	if w, ok := t.writes[c.name]; ok {
		w.c = c // a later write in the same batch wins
		return
	}
	if _, created := t.newChains[c.name]; created {
		flush, old = false, 0
	}
	t.writes[c.name] = &chainWrite{c: c, flush: flush, old: old}
}

func (t *tx) ops(s *setModel) *elemOps {
	o := t.elems[s.name]
	if o == nil {
		o = &elemOps{set: s}
		t.elems[s.name] = o
	}
	return o
}

func (t *tx) addInterval(s *setModel, iv interval) {
	if t != nil {
		o := t.ops(s)
		o.addIv = append(o.addIv, iv)
	}
}

func (t *tx) delInterval(s *setModel, iv interval) {
	if t != nil {
		o := t.ops(s)
		o.delIv = append(o.delIv, iv)
	}
}

func (t *tx) addHost(s *setModel, a netip.Addr) {
	if t != nil {
		o := t.ops(s)
		o.addH = append(o.addH, a)
	}
}

func (t *tx) delHost(s *setModel, a netip.Addr) {
	if t != nil {
		o := t.ops(s)
		o.delH = append(o.delH, a)
	}
}

func (t *tx) addPort(s *setModel, ap netip.AddrPort) {
	if t != nil {
		o := t.ops(s)
		o.addPt = append(o.addPt, ap)
	}
}

func (t *tx) delPort(s *setModel, ap netip.AddrPort) {
	if t != nil {
		o := t.ops(s)
		o.delPt = append(o.delPt, ap)
	}
}

func (t *tx) addDispatch(s *setModel, a netip.Addr, chain string) {
	if t != nil {
		o := t.ops(s)
		o.addJump = append(o.addJump, jumpEntry{a, chain})
	}
}

func (t *tx) delDispatch(s *setModel, a netip.Addr) {
	if t != nil {
		o := t.ops(s)
		o.delJump = append(o.delJump, a)
	}
}

// changes counts the objects the batch creates, replaces or deletes.
func (t *tx) changes() int {
	n := len(t.newSets) + len(t.delSets) + len(t.flushSets) + len(t.newChains) + len(t.delChains) + len(t.newLimits) + len(t.delLimits)
	if t.addTable {
		n++
	}
	for _, w := range t.writes {
		n += w.old + len(w.c.rules)
	}
	for _, o := range t.elems {
		n += len(o.addIv) + len(o.delIv) + len(o.addH) + len(o.delH) + len(o.addPt) + len(o.delPt) + len(o.addJump) + len(o.delJump) +
			len(o.addIf) + len(o.delIf) + len(o.addPr) + len(o.delPr)
	}
	if t.delTable {
		n++
	}
	if t.br != nil {
		n += t.br.changes()
	}
	return n
}

func (t *tx) empty() bool { return t.changes() == 0 }

// messages orders the batch (see tx).
func (t *tx) messages() []netlink.Message {
	if t.delTable {
		var a attrBuf
		a.putStr(unix.NFTA_TABLE_NAME, t.table)
		return []netlink.Message{t.msg(unix.NFT_MSG_DELTABLE, 0, a.b)}
	}
	var phase [11][]netlink.Message
	if t.addTable {
		phase[0] = append(phase[0], t.tableMsg())
	}
	for _, name := range sortedKeys(t.flushSets) {
		phase[1] = append(phase[1], t.msg(unix.NFT_MSG_DELSETELEM, 0, t.setRef(name)))
	}
	for _, name := range sortedKeys(t.elems) {
		o := t.elems[name]
		if o.set.kind == vmapKind {
			phase[1] = append(phase[1], t.elemMsgs(unix.NFT_MSG_DELSETELEM, o.set, o.delElems())...)
			phase[9] = append(phase[9], t.elemMsgs(unix.NFT_MSG_NEWSETELEM, o.set, o.addElems())...)
			continue
		}
		phase[6] = append(phase[6], t.elemMsgs(unix.NFT_MSG_DELSETELEM, o.set, o.delElems())...)
		phase[7] = append(phase[7], t.elemMsgs(unix.NFT_MSG_NEWSETELEM, o.set, o.addElems())...)
	}
	for _, name := range sortedKeys(t.delChains) {
		phase[2] = append(phase[2], t.msg(unix.NFT_MSG_DELRULE, 0, t.chainRef(unix.NFTA_RULE_TABLE, unix.NFTA_RULE_CHAIN, name)))
		phase[3] = append(phase[3], t.msg(unix.NFT_MSG_DELCHAIN, 0, t.chainRef(unix.NFTA_CHAIN_TABLE, unix.NFTA_CHAIN_NAME, name)))
	}
	for _, name := range sortedKeys(t.delSets) {
		phase[4] = append(phase[4], t.msg(unix.NFT_MSG_DELSET, 0, t.setRef(name)))
	}
	for _, name := range sortedKeys(t.newSets) {
		phase[5] = append(phase[5], t.setMsg(t.newSets[name]))
	}
	for _, name := range sortedKeys(t.newChains) {
		phase[5] = append(phase[5], t.chainMsg(t.newChains[name]))
	}
	for _, name := range sortedKeys(t.newLimits) {
		phase[5] = append(phase[5], t.limitMsg(name, t.newLimits[name]))
	}
	for _, name := range sortedKeys(t.delLimits) {
		phase[10] = append(phase[10], t.msg(unix.NFT_MSG_DELOBJ, 0, t.objRef(name)))
	}
	for _, name := range sortedKeys(t.writes) {
		w := t.writes[name]
		if w.flush {
			phase[2] = append(phase[2], t.msg(unix.NFT_MSG_DELRULE, 0, t.chainRef(unix.NFTA_RULE_TABLE, unix.NFTA_RULE_CHAIN, name)))
		}
		for _, r := range w.c.rules {
			phase[8] = append(phase[8], t.ruleMsg(name, r))
		}
	}
	var out []netlink.Message
	for _, p := range phase {
		out = append(out, p...)
	}
	if t.br != nil {
		out = append(out, t.br.messages()...)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// newMsgBuf starts a message's attributes after room for its nfgenmsg.
func newMsgBuf(n int) attrBuf {
	return attrBuf{b: make([]byte, 4, 4+n)}
}

// msg turns a buffer from newMsgBuf into a message of family.
func (a *attrBuf) msg(family byte, typ int, flags netlink.HeaderFlags) netlink.Message {
	copy(a.b, nfgen(family, 0))
	return netlink.Message{
		Header: netlink.Header{Type: msgType(typ), Flags: netlink.Request | flags},
		Data:   a.b,
	}
}

func (t *tx) msg(typ int, flags netlink.HeaderFlags, attrs []byte) netlink.Message {
	data := make([]byte, 4, 4+len(attrs))
	copy(data, nfgen(t.family, 0))
	return netlink.Message{
		Header: netlink.Header{Type: msgType(typ), Flags: netlink.Request | flags},
		Data:   append(data, attrs...),
	}
}

func (t *tx) tableMsg() netlink.Message {
	var a attrBuf
	a.putStr(unix.NFTA_TABLE_NAME, t.table)
	a.putU32(unix.NFTA_TABLE_FLAGS, 0) // also wakes a table someone made dormant
	return t.msg(unix.NFT_MSG_NEWTABLE, netlink.Create, a.b)
}

func (t *tx) setRef(name string) []byte {
	var a attrBuf
	a.putStr(unix.NFTA_SET_TABLE, t.table)
	a.putStr(unix.NFTA_SET_NAME, name)
	return a.b
}

func (t *tx) chainRef(tableAttr, nameAttr uint16, name string) []byte {
	var a attrBuf
	a.putStr(tableAttr, t.table)
	a.putStr(nameAttr, name)
	return a.b
}

func (t *tx) setMsg(s *setModel) netlink.Message {
	at := s.attrs()
	t.setCounter++
	var a attrBuf
	a.putStr(unix.NFTA_SET_TABLE, t.table)
	a.putStr(unix.NFTA_SET_NAME, s.name)
	a.putU32(unix.NFTA_SET_FLAGS, at.flags)
	a.putU32(unix.NFTA_SET_KEY_TYPE, at.keyType)
	a.putU32(unix.NFTA_SET_KEY_LEN, at.keyLen)
	if at.dataType != 0 {
		a.putU32(unix.NFTA_SET_DATA_TYPE, at.dataType)
	}
	if at.dataLen != 0 {
		a.putU32(unix.NFTA_SET_DATA_LEN, at.dataLen)
	}
	a.putU32(unix.NFTA_SET_ID, t.setCounter)
	if ud := setUserdata(s); len(ud) > 0 {
		a.put(unix.NFTA_SET_USERDATA, ud)
	}
	return t.msg(unix.NFT_MSG_NEWSET, netlink.Create, a.b)
}

func (t *tx) chainMsg(c *chainModel) netlink.Message {
	var a attrBuf
	a.putStr(unix.NFTA_CHAIN_TABLE, t.table)
	a.putStr(unix.NFTA_CHAIN_NAME, c.name)
	if c.base != nil {
		h := a.begin(unix.NFTA_CHAIN_HOOK)
		a.putU32(unix.NFTA_HOOK_HOOKNUM, c.base.hook)
		a.putU32(unix.NFTA_HOOK_PRIORITY, uint32(c.base.prio))
		a.end(h)
		a.putU32(unix.NFTA_CHAIN_POLICY, nfAccept)
		a.putStr(unix.NFTA_CHAIN_TYPE, "filter")
	}
	if c.comment != "" {
		a.put(nftaChainUserdata, comment(udataChainComment, c.comment))
	}
	return t.msg(unix.NFT_MSG_NEWCHAIN, netlink.Create, a.b)
}

func (t *tx) ruleMsg(chain string, r *ruleModel) netlink.Message {
	n := 64 + len(t.table) + len(chain) + len(r.udata) + 8*len(r.exprs)
	for _, e := range r.exprs {
		n += len(e)
	}
	a := newMsgBuf(n)
	a.putStr(unix.NFTA_RULE_TABLE, t.table)
	a.putStr(unix.NFTA_RULE_CHAIN, chain)
	l := a.begin(unix.NFTA_RULE_EXPRESSIONS)
	for _, e := range r.exprs {
		el := a.begin(unix.NFTA_LIST_ELEM)
		a.b = append(a.b, e...)
		a.end(el)
	}
	a.end(l)
	if len(r.udata) > 0 {
		a.put(unix.NFTA_RULE_USERDATA, r.udata)
	}
	return a.msg(t.family, unix.NFT_MSG_NEWRULE, netlink.Create|netlink.Append)
}

// element is one kernel set element.
type element struct {
	key   []byte
	end   bool   // interval end
	data  []byte // data map: the value
	chain string // verdict map: jump target
}

func (o *elemOps) addElems() []element {
	var ar arena
	out := make([]element, 0, 2*len(o.addIv)+len(o.addH)+len(o.addPt)+len(o.addJump))
	for _, iv := range o.addIv {
		out = appendInterval(out, &ar, iv)
	}
	for _, a := range o.addH {
		out = append(out, element{key: ar.addr(a)})
	}
	for _, name := range o.addIf {
		out = append(out, element{key: ar.ifname(name)})
	}
	for _, p := range o.addPr {
		out = append(out, element{key: ar.pair(p)})
	}
	for _, ap := range o.addPt {
		out = append(out, element{key: ar.port(ap)})
	}
	for _, j := range o.addJump {
		out = append(out, element{key: ar.addr(j.addr), chain: j.chain})
	}
	return out
}

func (o *elemOps) delElems() []element {
	var ar arena
	out := make([]element, 0, 2*len(o.delIv)+len(o.delH)+len(o.delPt)+len(o.delJump))
	for _, iv := range o.delIv {
		out = appendInterval(out, &ar, iv)
	}
	for _, a := range o.delH {
		out = append(out, element{key: ar.addr(a)})
	}
	for _, name := range o.delIf {
		out = append(out, element{key: ar.ifname(name)})
	}
	for _, p := range o.delPr {
		out = append(out, element{key: ar.pair(p)})
	}
	for _, ap := range o.delPt {
		out = append(out, element{key: ar.port(ap)})
	}
	for _, a := range o.delJump {
		out = append(out, element{key: ar.addr(a)})
	}
	return out
}

func appendInterval(out []element, ar *arena, iv interval) []element {
	out = append(out, element{key: ar.addr(iv.lo)})
	if !iv.open {
		out = append(out, element{key: ar.addr(iv.hi), end: true})
	}
	return out
}

// arena hands out key bytes from shared blocks (one allocation per few
// hundred elements instead of one per element).
type arena struct{ b []byte }

func (ar *arena) take(n int) []byte {
	if cap(ar.b)-len(ar.b) < n {
		ar.b = make([]byte, 0, max(8192, n))
	}
	k := ar.b[len(ar.b) : len(ar.b)+n : len(ar.b)+n]
	ar.b = ar.b[:len(ar.b)+n]
	return k
}

func (ar *arena) addr(a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		return append(ar.take(4)[:0], b[:]...)
	}
	b := a.As16()
	return append(ar.take(16)[:0], b[:]...)
}

// port is the concatenated key address . port (the port padded to 4 bytes,
// as registers hold it).
func (ar *arena) port(ap netip.AddrPort) []byte {
	a := ap.Addr().AsSlice()
	k := ar.take(len(a) + 4)
	copy(k, a)
	k[len(a)], k[len(a)+1], k[len(a)+2], k[len(a)+3] = byte(ap.Port()>>8), byte(ap.Port()), 0, 0
	return k
}

// maxElemBytes keeps each element list well under the 64 KiB a netlink
// attribute can hold.
const maxElemBytes = 32 << 10

func (t *tx) elemMsgs(typ int, s *setModel, elems []element) []netlink.Message {
	var out []netlink.Message
	for len(elems) > 0 {
		a := newMsgBuf(min(maxElemBytes+2048, 128+len(elems)*(64+len(elems[0].chain))))
		a.putStr(unix.NFTA_SET_ELEM_LIST_TABLE, t.table)
		a.putStr(unix.NFTA_SET_ELEM_LIST_SET, s.name)
		l := a.begin(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
		start := len(a.b)
		n := 0
		for n < len(elems) && len(a.b)-start < maxElemBytes {
			encodeElem(&a, elems[n])
			n++
		}
		a.end(l)
		var flags netlink.HeaderFlags
		if typ == unix.NFT_MSG_NEWSETELEM {
			flags = netlink.Create
		}
		out = append(out, a.msg(t.family, typ, flags))
		elems = elems[n:]
	}
	return out
}

func encodeElem(a *attrBuf, e element) {
	el := a.begin(unix.NFTA_LIST_ELEM)
	k := a.begin(unix.NFTA_SET_ELEM_KEY)
	a.put(unix.NFTA_DATA_VALUE, e.key)
	a.end(k)
	if e.end {
		a.putU32(unix.NFTA_SET_ELEM_FLAGS, unix.NFT_SET_ELEM_INTERVAL_END)
	}
	if e.data != nil {
		d := a.begin(unix.NFTA_SET_ELEM_DATA)
		a.put(unix.NFTA_DATA_VALUE, e.data)
		a.end(d)
	}
	if e.chain != "" {
		d := a.begin(unix.NFTA_SET_ELEM_DATA)
		v := a.begin(unix.NFTA_DATA_VERDICT)
		a.putU32(unix.NFTA_VERDICT_CODE, nftJump)
		a.putStr(unix.NFTA_VERDICT_CHAIN, e.chain)
		a.end(v)
		a.end(d)
	}
	a.end(el)
}
