# Installs the Annals build into a scratch prefix, then configures, builds and
# runs a separate consumer project against it with find_package(annals).
# Invoked by ctest with -DANNALS_BINARY_DIR -DCONSUMER_SOURCE_DIR -DWORK_DIR
# -DCMAKE_CXX_COMPILER -DCMAKE_BUILD_TYPE -DCONSUMER_CXX_FLAGS -DCONSUMER_LINKER_FLAGS
# -DANNALS_WITH_POSTGRES (whether the build has annals::postgres; and
# optionally -DCMAKE_GENERATOR). Every step that fails stops the script with
# its output; "find-package: ok" is printed last, only when all passed.
#
# 1. The consumer that asks for no component, configured as if libpq were not
#    installed (CMAKE_DISABLE_FIND_PACKAGE_PostgreSQL), builds and runs.
# 2. With annals::postgres: the consumer asking for the postgres component
#    builds consumer_postgres, which runs; without libpq, find_package(annals
#    COMPONENTS postgres) fails saying libpq was not found. Without it in the
#    build: asking for the component fails saying this installation has none.
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

# Configures the consumer in `dir` against the scratch prefix, with `ARGN`
# added; sets `configure_rc` and `configure_output` in the caller.
function(configure_consumer dir)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${dir} ${generator}
                          -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
                          ${consumer_args}
                          "-DCMAKE_CXX_FLAGS=${CONSUMER_CXX_FLAGS}"
                          "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_LINKER_FLAGS}" ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(configure_rc ${rc} PARENT_SCOPE)
  set(configure_output "${out}\n${err}" PARENT_SCOPE)
endfunction()

# Fails unless configuring the consumer with `ARGN` fails and says `expected`.
function(configure_fails_saying expected dir)
  configure_consumer(${dir} ${ARGN})
  string(FIND "${configure_output}" "${expected}" at)
  string(REPLACE ";" " " args "${ARGN}")
  if(configure_rc EQUAL 0 OR at EQUAL -1)
    message(FATAL_ERROR "run.cmake: configuring the consumer with ${args} should fail saying "
                        "'${expected}' (exit code ${configure_rc}):\n${configure_output}")
  endif()
  message("as expected, the consumer with ${args} does not configure: '${expected}'")
endfunction()

step(${CMAKE_COMMAND} --install ${ANNALS_BINARY_DIR} --prefix ${prefix})

# 1. No component asked for: libpq must not be needed.
configure_consumer(${build} -DCMAKE_DISABLE_FIND_PACKAGE_PostgreSQL=ON)
if(NOT configure_rc EQUAL 0)
  message(FATAL_ERROR "run.cmake: the consumer does not configure without libpq:\n${configure_output}")
endif()

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

# 2. The postgres component.
if(ANNALS_WITH_POSTGRES)
  configure_consumer(${WORK_DIR}/consumer-postgres-build -DCONSUMER_WITH_POSTGRES=ON)
  if(NOT configure_rc EQUAL 0)
    message(FATAL_ERROR "run.cmake: the consumer does not configure with the postgres component:\n${configure_output}")
  endif()
  step(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-postgres-build --target consumer_postgres)
  # An empty directory: no server listens on a socket in it.
  file(MAKE_DIRECTORY ${WORK_DIR}/no-server)
  step(${WORK_DIR}/consumer-postgres-build/consumer_postgres ${WORK_DIR}/no-server)
  message("${step_output}")
  configure_fails_saying("libpq was not found" ${WORK_DIR}/consumer-no-libpq-build
                         -DCONSUMER_WITH_POSTGRES=ON -DCMAKE_DISABLE_FIND_PACKAGE_PostgreSQL=ON)
else()
  configure_fails_saying("this installation has no PostgreSQL store"
                         ${WORK_DIR}/consumer-postgres-build -DCONSUMER_WITH_POSTGRES=ON)
endif()
message("find-package: ok")
