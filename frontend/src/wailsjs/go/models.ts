export namespace app {
	
	export interface Account {
	    serverUrl: string;
	    userId: string;
	    email: string;
	    fullName: string;
	    platformAdmin: boolean;
	}
	export interface Status {
	    online: boolean;
	    lastContactAt: string;
	    pending: number;
	    conflicts: number;
	    lastSyncAt?: string;
	    detail: string;
	}
	export interface Store {
	    id: string;
	    sellerId: string;
	    name: string;
	    primaryColor: string;
	    accentColor: string;
	    logoUrl: string;
	}
	export interface StoreList {
	    stores: Store[];
	    offline: boolean;
	    updatedAt: string;
	}

}

