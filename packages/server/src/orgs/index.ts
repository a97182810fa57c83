export { OrgRepository, type Organization, type OrgWithRole, type Member } from './repository.js';
export { OrgService, type OrgAccess } from './service.js';
export { actions, orgRoles, roleAllows, permissionTable, type Action, type OrgRole } from '../auth/permissions.js';
