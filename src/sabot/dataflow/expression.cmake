# The expression language of the map, filter and project operators (docs/expressions.md):
# parser, canonical printer, binder to arrow::compute::Expression, and evaluation helpers.
sabot_add_library(sabot_expression
  SOURCES expression_ast.cc expression_catalog.cc expression_parser.cc expression_printer.cc
          expression_binder.cc expression_evaluation.cc
  DEPS sabot_common Sabot::arrow_compute Sabot::arrow)
sabot_add_test(expression_parser_test SOURCES expression_parser_test.cc DEPS sabot_expression)
sabot_add_test(expression_printer_test SOURCES expression_printer_test.cc DEPS sabot_expression)
sabot_add_test(expression_binder_test SOURCES expression_binder_test.cc DEPS sabot_expression)
sabot_add_test(expression_evaluation_test SOURCES expression_evaluation_test.cc
  DEPS sabot_expression)
