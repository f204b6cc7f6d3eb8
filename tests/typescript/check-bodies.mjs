// Lists documented bodies whose generated TypeScript type is untyped.
//
// usage: node check-bodies.mjs generated/api.d.ts   -> prints a JSON array of problems
//
// Reads the `operations` interface that openapi-typescript writes and asks the TypeScript
// checker (not a regex) for the type of every request body and response body. A body is
// untyped when its type is `unknown`/`any`, an object with no declared fields (`{}`,
// `Record<string, unknown>`), or an array of those: a frontend would get no help from it. Fields inside a typed body may still be
// free-form (e.g. a job's `result`).
import ts from "typescript";

const file = process.argv[2];
const program = ts.createProgram([file], { strict: true, noEmit: true, skipLibCheck: true });
const checker = program.getTypeChecker();
const source = program.getSourceFile(file);
if (!source) throw new Error(`cannot read ${file}`);

const declaration = source.statements.find(
  (node) => ts.isInterfaceDeclaration(node) && node.name.text === "operations",
);
const problems = [];
if (!declaration) {
  problems.push("the generated types have no `operations` interface (operations without ids?)");
} else {
  const operations = checker.getTypeAtLocation(declaration);
  for (const operation of operations.getProperties()) {
    const operationType = checker.getTypeOfSymbolAtLocation(operation, declaration);
    const requestBody = property(operationType, "requestBody");
    if (requestBody) checkContent(`${operation.name} request body`, requestBody);
    const responses = property(operationType, "responses");
    for (const status of responses ? responses.getProperties() : []) {
      const response = checker.getTypeOfSymbolAtLocation(status, declaration);
      checkContent(`${operation.name} response ${status.name}`, response);
    }
  }
}
process.stdout.write(JSON.stringify(problems));

function property(type, name) {
  const symbol = checker.getNonNullableType(type).getProperty(name);
  if (!symbol) return undefined;
  const found = checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(symbol, declaration));
  return found.flags & ts.TypeFlags.Never ? undefined : found;
}

function checkContent(where, holder) {
  const content = property(holder, "content");
  for (const media of content ? content.getProperties() : []) {
    const body = checker.getTypeOfSymbolAtLocation(media, declaration);
    if (isUntyped(body)) {
      problems.push(`${where} (${media.name}) is untyped: ${checker.typeToString(body)}`);
    }
  }
}

function isUntyped(type) {
  if (type.flags & (ts.TypeFlags.Unknown | ts.TypeFlags.Any)) return true;
  if (checker.isArrayType(type)) {
    const [element] = checker.getTypeArguments(type);
    return element === undefined || isUntyped(element);
  }
  if (type.flags & ts.TypeFlags.Object && type.getProperties().length === 0) {
    const index = checker.getIndexInfosOfType(type);
    // `{}`, `Record<string, unknown>` and `Record<string, never>` say nothing about the body.
    return (
      index.length === 0 ||
      index.some((info) => info.type.flags & ts.TypeFlags.Never || isUntyped(info.type))
    );
  }
  return false;
}
