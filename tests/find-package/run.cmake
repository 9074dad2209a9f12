# Installs the Annals build into a scratch prefix, then configures, builds and
# runs a separate consumer project against it with find_package(annals).
# Invoked by ctest with -DANNALS_BINARY_DIR -DCONSUMER_SOURCE_DIR -DWORK_DIR
# -DCMAKE_CXX_COMPILER -DCMAKE_BUILD_TYPE -DCONSUMER_CXX_FLAGS -DCONSUMER_LINKER_FLAGS
# (and optionally -DCMAKE_GENERATOR). Every step that fails stops the script
# with its output; the consumer's own output is printed last.
foreach(var ANNALS_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "run.cmake: ${var} is not set")
  endif()
endforeach()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/consumer-build)
# A fresh prefix and build directory every time: nothing stale can pass.
file(REMOVE_RECURSE ${WORK_DIR})

function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "run.cmake: step failed (${rc}): ${command}\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

set(generator)
if(CMAKE_GENERATOR)
  set(generator -G ${CMAKE_GENERATOR})
else()
  find_program(ninja ninja)
  if(ninja)
    set(generator -G Ninja)
  endif()
endif()

# Same compiler and build type as the Annals build, when given.
set(consumer_args)
foreach(var CMAKE_CXX_COMPILER CMAKE_BUILD_TYPE)
  if(${var})
    list(APPEND consumer_args -D${var}=${${var}})
  endif()
endforeach()

step(${CMAKE_COMMAND} --install ${ANNALS_BINARY_DIR} --prefix ${prefix})
step(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${build} ${generator}
     -DCMAKE_PREFIX_PATH=${prefix} ${consumer_args}
     "-DCMAKE_CXX_FLAGS=${CONSUMER_CXX_FLAGS}"
     "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_LINKER_FLAGS}")

# The package must come from the scratch prefix, not from some other install.
file(STRINGS ${build}/CMakeCache.txt annals_dir REGEX "^annals_DIR:")
string(REGEX REPLACE "^annals_DIR:[A-Z]+=" "" annals_dir "${annals_dir}")
file(REAL_PATH "${annals_dir}" annals_dir)
file(REAL_PATH "${prefix}" real_prefix)
string(FIND "${annals_dir}" "${real_prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "run.cmake: find_package(annals) found '${annals_dir}', not the copy installed in '${prefix}'")
endif()

step(${CMAKE_COMMAND} --build ${build})
# The conformance kit from the installed headers: every test must pass.
step(${build}/consumer_conformance --gtest_brief=1)
string(REGEX MATCH "\\[  PASSED  \\] [0-9]+ tests" passed "${step_output}")
if(NOT passed)
  message(FATAL_ERROR "run.cmake: the installed conformance kit did not pass:\n${step_output}")
endif()
message("${passed} of the installed conformance kit")
step(${build}/consumer ${WORK_DIR}/consumer.db)
message("${step_output}")
