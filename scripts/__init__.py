"""The tools around the application, by job: local/, deploy/, tenants/, measure/ and docs/.

The modules at this level are the base every job shares (stage settings and resources, AWS call
helpers, the change report, command output, loopback openers, provisioning, monitoring
definitions); they import no job's module.
"""
