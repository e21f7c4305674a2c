# Small helpers that keep each folder's CMakeLists.txt a few lines long.
#
#   sabot_add_library(name SOURCES a.cc b.cc DEPS other_lib ...)
#   sabot_add_test(name SOURCES a_test.cc DEPS lib ... [LABELS l ...] [TIMEOUT s])
#   sabot_add_benchmark(name SOURCES a_benchmark.cc DEPS lib ...)
#   sabot_add_executable(name SOURCES main.cc DEPS lib ...)

set(SABOT_WARNINGS -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers)
set(SABOT_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined
                          -fno-omit-frame-pointer)

# The fuzz flavor instruments all of our code for libFuzzer's coverage and the sanitizers; only
# the fuzz targets themselves link libFuzzer (src/sabot/fuzz/). Clang does not know some of the
# GCC warnings our sources silence by name.
set(SABOT_FUZZ_COMPILE_FLAGS -fsanitize=fuzzer-no-link,address,undefined
                             -fno-sanitize-recover=undefined -fno-omit-frame-pointer
                             -Wno-unknown-warning-option)

function(sabot_configure_target name)
  target_compile_options(${name} PRIVATE ${SABOT_WARNINGS})
  if(SABOT_FUZZ)
    target_compile_options(${name} PRIVATE ${SABOT_FUZZ_COMPILE_FLAGS})
    target_link_options(${name} PRIVATE -fsanitize=address,undefined)
  elseif(SABOT_SANITIZE)
    target_compile_options(${name} PRIVATE ${SABOT_SANITIZER_FLAGS})
    target_link_options(${name} PRIVATE ${SABOT_SANITIZER_FLAGS})
  endif()
endfunction()

function(sabot_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC "${PROJECT_SOURCE_DIR}/src")
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  sabot_configure_target(${name})
endfunction()

function(sabot_add_executable name)
  cmake_parse_arguments(ARG "" "OUTPUT_NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  if(ARG_OUTPUT_NAME)
    set_target_properties(${name} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
  sabot_configure_target(${name})
endfunction()

function(sabot_add_test name)
  if(NOT SABOT_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} sabot_testing)
  sabot_configure_target(${name})
  add_test(NAME ${name} COMMAND ${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "unit;${ARG_LABELS}")
endfunction()

# Benchmarks are built with the project and, in optimized builds, run once for a few
# milliseconds as a smoke test so they cannot rot; their figures come from running them by hand
# (see docs/performance.md).
function(sabot_add_benchmark name)
  if(NOT SABOT_BUILD_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} sabot_benchmark_main)
  sabot_configure_target(${name})
  if(SABOT_BUILD_TESTS AND NOT SABOT_SANITIZE)
    add_test(NAME ${name}_smoke COMMAND ${name} --benchmark_min_time=0.001 --sabot_smoke)
    set_tests_properties(${name}_smoke PROPERTIES TIMEOUT 300 LABELS "benchmark")
  endif()
endfunction()
