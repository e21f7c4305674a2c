#pragma once

// Expressions built with pyarrow.compute travel from Python as Substrait (an ExtendedExpression
// message, pyarrow.substrait.serialize_expressions); the plan carries expressions as text in
// Sabot's expression language (docs/expressions.md). This translates the first into the second,
// so a plan built in Python is an ordinary plan: it runs without Python, travels as JSON and
// reads well in explain output. docs/python.md lists what translates.

#include <string>
#include <utility>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/result.h>

namespace sabot::python {

// Each (name, text) of the serialized expressions, in order. NotImplemented naming the function
// or literal type that has no form in the language; Invalid for a malformed message.
arrow::Result<std::vector<std::pair<std::string, std::string>>> SubstraitToText(
    const arrow::Buffer& serialized);

}  // namespace sabot::python
