# Installing pgxform, and its Debian package: `cmake --build build --target deb` (CPack's DEB
# generator, after building only what the package holds; `--target package` works too, after
# building everything) writes build/pgxform_<version>_<arch>.deb with
#   /usr/bin/pgxform                                   stripped
#   /usr/share/man/man1/pgxform.1.gz                   docs/pgxform.1, version filled in
#   /usr/share/bash-completion/completions/pgxform     scripts/completion/pgxform
#   /usr/share/doc/pgxform/                            README.md, docs/*.md, the Grafana
#                                                      dashboard (docs/*.json), copyright,
#                                                      changelog.gz, examples/ (the sample)
# Its dependencies come from the binary's shared libraries (dpkg-shlibdeps), its version from
# project(). tests/package_test.sh checks it with lintian and dpkg -x (scripts/test runs it).
include(GNUInstallDirs)

install(TARGETS pgxform RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Debian wants man pages and changelogs compressed, with no timestamp in the gzip header (-n).
configure_file(${CMAKE_SOURCE_DIR}/docs/pgxform.1 ${CMAKE_BINARY_DIR}/pgxform.1 @ONLY)
configure_file(${CMAKE_SOURCE_DIR}/cmake/changelog.in ${CMAKE_BINARY_DIR}/changelog @ONLY)
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/pgxform.1.gz ${CMAKE_BINARY_DIR}/changelog.gz
  COMMAND gzip -9nf -k ${CMAKE_BINARY_DIR}/pgxform.1 ${CMAKE_BINARY_DIR}/changelog
  DEPENDS ${CMAKE_BINARY_DIR}/pgxform.1 ${CMAKE_BINARY_DIR}/changelog
  COMMENT "Compressing the man page and the changelog")
add_custom_target(package_files ALL DEPENDS ${CMAKE_BINARY_DIR}/pgxform.1.gz
                                            ${CMAKE_BINARY_DIR}/changelog.gz)

install(FILES ${CMAKE_BINARY_DIR}/pgxform.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_SOURCE_DIR}/scripts/completion/pgxform
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
file(GLOB PGXFORM_DOCS ${CMAKE_SOURCE_DIR}/docs/*.md ${CMAKE_SOURCE_DIR}/docs/*.svg
     ${CMAKE_SOURCE_DIR}/docs/*.json)
# The docs in docs/ beside the README, as in the repository: the README's links (docs/cli.md)
# and the docs' own (../README.md) hold in the installed tree too.
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/cmake/copyright
              ${CMAKE_BINARY_DIR}/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PGXFORM_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
install(FILES ${CMAKE_SOURCE_DIR}/jobs.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/sql DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pgxform)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "pgxform maintainers <pgxform-maintainers@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "resumable runner of SQL transforms over keyset batches for PostgreSQL migrations")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "pgxform calls DBAs' SQL transform functions over keyset-paginated batches of a\n\
leading table, each batch in one transaction with the job's cursor, so that an\n\
interrupted migration resumes exactly after the last committed batch. It runs\n\
independent job lists in parallel, applies versioned SQL scripts, retries\n\
transient failures, records permanent ones, and profiles every batch.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_OUTPUT_FILE_PREFIX ${CMAKE_BINARY_DIR})
include(CPack)

# `cmake --build build --target deb`: the package from the binary and the files it installs,
# and nothing else. CPack's own `package` target builds `all` first, every test binary included,
# which the package never holds; and CPack's install step builds `all` too, unless the install
# does not depend on it (`cmake --install` never builds anyway).
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
add_custom_target(deb
  COMMAND ${CMAKE_CPACK_COMMAND} --config ${CMAKE_BINARY_DIR}/CPackConfig.cmake
  WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
  COMMENT "Packaging pgxform as a .deb"
  VERBATIM)
add_dependencies(deb pgxform package_files)
