import { runRepositoryContract } from './repositories.contract.js';

runRepositoryContract('sqlite');
