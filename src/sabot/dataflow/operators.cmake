# The operators of a dataflow job (operator.h, operator_binding.h): generator, file and table
# sources, watermarks, map/filter/project, file/console/collect sinks, and BindOperator.
sabot_add_library(sabot_operators
  SOURCES operator_binding.cc watermark_generator.cc generator_source.cc map_filter_project.cc
          collect_sink.cc console_sink.cc file_source.cc table_source.cc
          file_sink.cc grouped_aggregation.cc state_spill.cc aggregate_operator.cc
          join_operator.cc windowed_aggregate.cc
          function_map.cc
  DEPS sabot_dataflow sabot_expression sabot_common Sabot::arrow_dataset Sabot::parquet
       Sabot::arrow_acero Sabot::arrow_compute Sabot::arrow)
sabot_add_test(watermark_generator_test SOURCES watermark_generator_test.cc DEPS sabot_operators)
sabot_add_test(generator_source_test SOURCES generator_source_test.cc DEPS sabot_operators)
sabot_add_test(map_filter_project_test SOURCES map_filter_project_test.cc DEPS sabot_operators)
sabot_add_test(console_sink_test SOURCES console_sink_test.cc DEPS sabot_operators)
sabot_add_test(operator_binding_test SOURCES operator_binding_test.cc DEPS sabot_operators)
sabot_add_test(file_source_test SOURCES file_source_test.cc DEPS sabot_operators)
# Also runs a job (RunLocalJob) reading a provided table through a shuffle.
sabot_add_test(table_source_test SOURCES table_source_test.cc DEPS sabot_local_executor)
sabot_add_test(file_sink_test SOURCES file_sink_test.cc DEPS sabot_operators)
sabot_add_test(grouped_aggregation_test SOURCES grouped_aggregation_test.cc DEPS sabot_operators)
sabot_add_test(collect_sink_test SOURCES collect_sink_test.cc DEPS sabot_local_executor)
sabot_add_test(function_map_test SOURCES function_map_test.cc DEPS sabot_local_executor)
sabot_add_test(join_operator_test SOURCES join_operator_test.cc DEPS sabot_operators)
sabot_add_test(windowed_aggregate_test SOURCES windowed_aggregate_test.cc DEPS sabot_operators)
sabot_add_test(state_spill_test SOURCES state_spill_test.cc DEPS sabot_operators)
# Files written by pyarrow, read by the sources; part files written by the sinks, read by pyarrow
# (tests/reference/operator_files.py).
sabot_add_test(file_pyarrow_test SOURCES file_pyarrow_test.cc DEPS sabot_operators)
if(TARGET file_pyarrow_test)
  target_compile_definitions(file_pyarrow_test PRIVATE
    SABOT_PYTHON="${SABOT_PYTHON}"
    SABOT_OPERATOR_FILES_SCRIPT="${PROJECT_SOURCE_DIR}/tests/reference/operator_files.py")
endif()
