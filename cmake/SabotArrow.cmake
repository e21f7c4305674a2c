# Finds Arrow C++ (core, compute, acero, flight, parquet, dataset) and defines the imported targets
#   Sabot::arrow  Sabot::arrow_compute  Sabot::arrow_acero  Sabot::arrow_flight  Sabot::parquet
#   Sabot::arrow_dataset
#
# Two sources, tried in this order unless SABOT_ARROW_SOURCE says otherwise:
#   system  - an installed Arrow found with find_package(Arrow CONFIG) (conda, vendor packages);
#   pyarrow - the pinned pyarrow wheel in the project's .venv (scripts/setup.sh installs it): its
#             headers and its versioned shared libraries (libarrow.so.NNNN), imported by full
#             path, so nothing is written into the wheel and binaries find the libraries through
#             their RUNPATH. libarrow_python is never linked.

set(SABOT_ARROW_SOURCE "auto" CACHE STRING "Where Arrow C++ comes from: auto, system or pyarrow")
set_property(CACHE SABOT_ARROW_SOURCE PROPERTY STRINGS auto system pyarrow)
set(SABOT_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python interpreter whose pyarrow provides Arrow C++")

function(_sabot_alias_system_arrow)
  foreach(pair "arrow;Arrow::arrow_shared" "arrow_compute;ArrowCompute::arrow_compute_shared"
               "arrow_acero;ArrowAcero::arrow_acero_shared"
               "arrow_flight;ArrowFlight::arrow_flight_shared"
               "parquet;Parquet::parquet_shared"
               "arrow_dataset;ArrowDataset::arrow_dataset_shared")
    list(GET pair 0 short)
    list(GET pair 1 target)
    add_library(Sabot::${short} INTERFACE IMPORTED GLOBAL)
    if(TARGET ${target})
      target_link_libraries(Sabot::${short} INTERFACE ${target})
    elseif(NOT short STREQUAL "arrow_compute")
      message(FATAL_ERROR "system Arrow lacks ${target}")
    endif()
  endforeach()
endfunction()

set(_sabot_arrow_found FALSE)
if(SABOT_ARROW_SOURCE STREQUAL "auto" OR SABOT_ARROW_SOURCE STREQUAL "system")
  find_package(Arrow CONFIG QUIET)
  if(Arrow_FOUND)
    find_package(ArrowCompute CONFIG QUIET)
    find_package(ArrowAcero CONFIG QUIET)
    find_package(ArrowFlight CONFIG QUIET)
    find_package(Parquet CONFIG QUIET)
    find_package(ArrowDataset CONFIG QUIET)
    if(ArrowAcero_FOUND AND ArrowFlight_FOUND AND Parquet_FOUND AND ArrowDataset_FOUND)
      _sabot_alias_system_arrow()
      set(_sabot_arrow_found TRUE)
      message(STATUS "Sabot: using system Arrow ${Arrow_VERSION}")
    endif()
  endif()
  if(NOT _sabot_arrow_found AND SABOT_ARROW_SOURCE STREQUAL "system")
    message(FATAL_ERROR "SABOT_ARROW_SOURCE=system but no Arrow with Acero, Flight, Parquet "
                        "and Dataset was found")
  endif()
endif()

if(NOT _sabot_arrow_found)
  if(NOT EXISTS "${SABOT_PYTHON}")
    message(FATAL_ERROR "No Arrow C++ found. Run scripts/setup.sh (it installs the pinned pyarrow "
                        "into .venv) or set SABOT_PYTHON to a Python with pyarrow installed.")
  endif()
  execute_process(
    COMMAND "${SABOT_PYTHON}" -c
            "import pyarrow as pa; print(pa.__version__); print(pa.get_include()); print(pa.get_library_dirs()[0])"
    OUTPUT_VARIABLE _pa_out RESULT_VARIABLE _pa_rc OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _pa_rc EQUAL 0)
    message(FATAL_ERROR "${SABOT_PYTHON} cannot import pyarrow; run scripts/setup.sh")
  endif()
  string(REPLACE "\n" ";" _pa_out "${_pa_out}")
  list(GET _pa_out 0 SABOT_ARROW_VERSION)
  list(GET _pa_out 1 SABOT_ARROW_INCLUDE_DIR)
  list(GET _pa_out 2 SABOT_ARROW_LIB_DIR)
  string(REGEX MATCH "^[0-9]+" _major "${SABOT_ARROW_VERSION}")
  string(REGEX MATCH "^[0-9]+\\.[0-9]+" _minor_full "${SABOT_ARROW_VERSION}")
  string(REGEX REPLACE "^[0-9]+\\." "" _minor "${_minor_full}")
  math(EXPR _so_version "${_major} * 100 + ${_minor}")

  set(_deps_arrow "")
  set(_deps_arrow_compute "Sabot::arrow")
  set(_deps_arrow_acero "Sabot::arrow_compute")
  set(_deps_arrow_flight "Sabot::arrow")
  set(_deps_parquet "Sabot::arrow")
  set(_deps_arrow_dataset "Sabot::arrow_acero;Sabot::parquet")
  foreach(short arrow arrow_compute arrow_acero arrow_flight parquet arrow_dataset)
    set(_file "${SABOT_ARROW_LIB_DIR}/lib${short}.so.${_so_version}")
    if(NOT EXISTS "${_file}")
      message(FATAL_ERROR "pyarrow ${SABOT_ARROW_VERSION} lacks ${_file}")
    endif()
    add_library(Sabot::${short} SHARED IMPORTED GLOBAL)
    set_target_properties(Sabot::${short} PROPERTIES
      IMPORTED_LOCATION "${_file}"
      IMPORTED_SONAME "lib${short}.so.${_so_version}")
    target_include_directories(Sabot::${short} SYSTEM INTERFACE "${SABOT_ARROW_INCLUDE_DIR}")
    if(_deps_${short})
      target_link_libraries(Sabot::${short} INTERFACE ${_deps_${short}})
    endif()
  endforeach()
  # Binaries find the wheel's libraries through RUNPATH, without LD_LIBRARY_PATH.
  set(CMAKE_BUILD_RPATH "${SABOT_ARROW_LIB_DIR}" CACHE INTERNAL "")
  set(CMAKE_INSTALL_RPATH "${SABOT_ARROW_LIB_DIR}" CACHE INTERNAL "")
  message(STATUS "Sabot: using Arrow ${SABOT_ARROW_VERSION} from pyarrow at ${SABOT_ARROW_LIB_DIR}")
endif()
