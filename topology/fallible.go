package topology

// Fallible variants of the DSL methods whose functions cannot fail (Filter,
// SelectKey, Split, JoinGlobalTable, Table.Filter); the plain methods are
// built on them. Each adds the very node its plain twin adds, with the same generated name prefix and the same
// effect on repartitioning; an error the function returns fails the record,
// which goes to the error policy like any processor error. They exist for
// code that evaluates user-supplied logic (package declare's expressions),
// where a predicate can fail at run time and a panic would be the only other
// way out.

// infalliblePredicate adapts a predicate that cannot fail to the fallible
// variants, which the plain methods are built on.
func infalliblePredicate(pred func(key, value any) bool) func(key, value any) (bool, error) {
	return func(k, v any) (bool, error) { return pred(k, v), nil }
}

// FilterE is Filter with a predicate that may fail.
func (s *Stream) FilterE(pred func(key, value any) (bool, error), opts ...Option) *Stream {
	return s.add("FILTER", stateless(func(ctx ProcessorContext, r Record) error {
		ok, err := pred(r.Key, r.Value)
		if err != nil || !ok {
			return err
		}
		return ctx.Forward(r)
	}), false, opts)
}

// SelectKeyE is SelectKey with a key selector that may fail. Grouping its
// output repartitions.
func (s *Stream) SelectKeyE(fn func(key, value any) (any, error), opts ...Option) *Stream {
	return s.add("KEY-SELECT", stateless(func(ctx ProcessorContext, r Record) error {
		k, err := fn(r.Key, r.Value)
		if err != nil {
			return err
		}
		return ctx.Forward(r.WithKey(k))
	}), true, opts)
}

// BranchE is one arm of SplitE: Branch with a predicate that may fail. A
// nil Predicate is the default branch.
type BranchE struct {
	Name      string
	Predicate func(key, value any) (bool, error)
}

// SplitE is Split with predicates that may fail: the first error fails the
// record, and no branch gets it.
func (s *Stream) SplitE(branches []BranchE, opts ...Option) map[string]*Stream {
	n, _ := s.b.newNode(ProcessorNode, "BRANCH", opts)
	connect(s.node, n)
	out := make(map[string]*Stream, len(branches))
	childNames := make([]string, len(branches))
	for i, br := range branches {
		if br.Name == "" {
			s.b.errorf("split %q: branch %d has no name", n.Name, i)
		}
		child, _ := s.b.newNode(ProcessorNode, "BRANCH-"+br.Name, []Option{Named(n.Name + "-" + br.Name)})
		child.Supplier = stateless(func(ctx ProcessorContext, r Record) error { return ctx.Forward(r) })
		connect(n, child)
		childNames[i] = child.Name
		out[br.Name] = &Stream{b: s.b, node: child, keyChanged: s.keyChanged}
	}
	n.Supplier = stateless(func(ctx ProcessorContext, r Record) error {
		for i, br := range branches {
			if br.Predicate == nil {
				return ctx.ForwardTo(childNames[i], r)
			}
			ok, err := br.Predicate(r.Key, r.Value)
			if err != nil {
				return err
			}
			if ok {
				return ctx.ForwardTo(childNames[i], r)
			}
		}
		return nil
	})
	return out
}

// JoinGlobalTableE is JoinGlobalTable with a key selector that may fail.
func (s *Stream) JoinGlobalTableE(g *GlobalTable, keyOf func(key, value any) (any, error), joiner ValueJoiner, opts ...Option) *Stream {
	return s.joinGlobal("JOIN", g, keyOf, joiner, false, opts)
}

// LeftJoinGlobalTableE is LeftJoinGlobalTable with a key selector that may
// fail.
func (s *Stream) LeftJoinGlobalTableE(g *GlobalTable, keyOf func(key, value any) (any, error), joiner ValueJoiner, opts ...Option) *Stream {
	return s.joinGlobal("LEFTJOIN", g, keyOf, joiner, true, opts)
}

// FilterE is Table.Filter with a predicate that may fail; not negates it
// (FilterNot).
func (t *Table) FilterE(pred func(key, value any) (bool, error), not bool, opts ...Option) *Table {
	if !t.usable("filter") {
		return t
	}
	return t.derive("FILTER", func(k, v any) (any, error) {
		ok, err := pred(k, v)
		if err != nil || ok == not {
			return nil, err
		}
		return v, nil
	}, opts)
}

// infallible adapts a key selector that cannot fail.
func infallible(fn func(key, value any) any) func(key, value any) (any, error) {
	if fn == nil {
		return nil
	}
	return func(k, v any) (any, error) { return fn(k, v), nil }
}
