package archtest

import (
	"go/ast"
	"go/token"
	"sort"
	"strings"
)

// A package-level variable is state when anything changes it after the
// package is initialised, or when its value is a thing made to change
// (a mutex, an atomic, a map used as a cache, a channel, an HTTP client
// with its connection pool). Two importers of the SDK in one process, or
// two clients in one service, must never see each other through one.
//
// What is allowed: values computed once and only read (sentinel errors,
// compiled regexps, lookup tables, sync.OnceValue results) and a
// sync.Pool of scratch buffers, which no caller can observe.

// stateTypes are the selector expressions whose values exist to change.
var stateTypes = []string{
	"sync.Mutex", "sync.RWMutex", "sync.Map", "sync.WaitGroup", "sync.Cond",
	"atomic.", "http.Client", "http.Transport", "rand.New",
}

// stateProblems lists, for one package's files, each init function,
// each package-level variable of a changing kind, and each place that
// writes a package-level variable.
func stateProblems(files []*parsedFile) []string {
	var problems []string
	globals := map[string]bool{}
	specs := map[*ast.ValueSpec]bool{}
	for _, f := range files {
		for _, decl := range f.file.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.Name == "init" {
					problems = append(problems, f.at(d.Pos())+": func init: initialise in constructors instead")
				}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, spec := range d.Specs {
					vs := spec.(*ast.ValueSpec)
					specs[vs] = true
					for _, n := range vs.Names {
						if n.Name != "_" {
							globals[n.Name] = true
						}
					}
					if kind := changingKind(vs); kind != "" {
						problems = append(problems, f.at(vs.Pos())+": package-level "+kind+" "+vs.Names[0].Name)
					}
				}
			}
		}
	}
	for _, f := range files {
		problems = append(problems, writesToGlobals(f, globals, specs)...)
	}
	sort.Strings(problems)
	return problems
}

// changingKind names what a package-level variable holds when that is a
// thing made to change, or returns "".
func changingKind(vs *ast.ValueSpec) string {
	exprs := append([]ast.Expr{vs.Type}, vs.Values...)
	for _, e := range exprs {
		if e == nil {
			continue
		}
		found := ""
		ast.Inspect(e, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.FuncLit:
				return false // code run later, not the variable's own value
			case *ast.ChanType:
				found = "channel"
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok {
					name := id.Name + "." + x.Sel.Name
					for _, st := range stateTypes {
						if name == st || strings.HasSuffix(st, ".") && strings.HasPrefix(name, st) {
							found = name
						}
					}
				}
			}
			return found == ""
		})
		if found != "" {
			return found
		}
	}
	return ""
}

// writesToGlobals finds assignments, increments and address-taking whose
// target is rooted at a package-level variable. A name resolves to a
// package-level variable when the parser bound it to a top-level spec of
// this file, or left it unresolved (declared in another file of the
// package) and a package-level variable has that name.
func writesToGlobals(f *parsedFile, globals map[string]bool, specs map[*ast.ValueSpec]bool) []string {
	var problems []string
	isGlobal := func(e ast.Expr) (string, bool) {
		id := rootIdent(e)
		if id == nil || !globals[id.Name] {
			return "", false
		}
		if id.Obj == nil {
			return id.Name, true
		}
		vs, ok := id.Obj.Decl.(*ast.ValueSpec)
		return id.Name, ok && specs[vs]
	}
	report := func(pos token.Pos, name, how string) {
		problems = append(problems, f.at(pos)+": "+how+" package-level variable "+name)
	}
	for _, decl := range f.file.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.AssignStmt:
				for _, lhs := range x.Lhs {
					if name, ok := isGlobal(lhs); ok && x.Tok != token.DEFINE {
						report(x.Pos(), name, "writes")
					}
				}
			case *ast.IncDecStmt:
				if name, ok := isGlobal(x.X); ok {
					report(x.Pos(), name, "writes")
				}
			case *ast.UnaryExpr:
				if name, ok := isGlobal(x.X); ok && x.Op == token.AND {
					report(x.Pos(), name, "takes the address of")
				}
			case *ast.CallExpr:
				if id, ok := x.Fun.(*ast.Ident); ok && (id.Name == "delete" || id.Name == "clear") && len(x.Args) > 0 {
					if name, ok := isGlobal(x.Args[0]); ok {
						report(x.Pos(), name, "deletes from")
					}
				}
			}
			return true
		})
	}
	return problems
}

// rootIdent is the variable an lvalue such as a.b[c].d starts from.
func rootIdent(e ast.Expr) *ast.Ident {
	for {
		switch x := e.(type) {
		case *ast.Ident:
			return x
		case *ast.SelectorExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		default:
			return nil
		}
	}
}
